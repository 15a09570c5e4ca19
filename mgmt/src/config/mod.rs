//! Configuration: TOML parsed with serde into [`model::FileConfig`], validated into
//! [`model::Config`]. Every error names the file, the line and the field.

pub mod cidr;
pub mod device;
pub mod error;
pub mod locate;
pub mod model;
pub mod validate;

pub use error::ConfigError;
pub use model::Config;

use std::path::Path;

/// Parses and validates `src`, read from `file`.
pub fn parse(src: &str, file: &Path) -> Result<Config, ConfigError> {
    let parsed: model::FileConfig = toml::from_str(src).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: e.span().map(|s| locate::line_of(src, s.start)),
        field: String::new(),
        message: e.message().trim().to_string(),
    })?;
    validate::validate(parsed).map_err(|inv| ConfigError {
        file: file.to_path_buf(),
        line: locate::line_of_field(src, &inv.path),
        field: inv.path.to_string(),
        message: inv.message,
    })
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&src, path)
}

#[cfg(test)]
pub(crate) mod mutation_tests;
#[cfg(test)]
mod tests;
