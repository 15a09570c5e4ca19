//! Finds the line of a field in the TOML source, for error messages.

use super::error::{FieldPath, Step};
use toml_edit::{Document, Item, Table, Value};

/// 1-based line of the byte offset `at` in `src`.
pub fn line_of(src: &str, at: usize) -> usize {
    src.as_bytes()[..at.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A position in the parsed document: items, tables of an array of tables, and
/// array elements are different types in toml_edit.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

/// The child at `step` and the byte offset where it is written.
fn child<'a>(node: Node<'a>, step: &Step) -> Option<(Node<'a>, Option<usize>)> {
    match step {
        Step::Key(k) => {
            let (key, value) = match node {
                Node::Item(i) => i.as_table_like()?.get_key_value(k)?,
                Node::Table(t) => t.get_key_value(k)?,
                Node::Value(v) => v.as_inline_table()?.get_key_value(k)?,
            };
            Some((Node::Item(value), key.span().map(|s| s.start)))
        }
        Step::Index(n) => match node {
            Node::Item(i) => {
                if let Some(aot) = i.as_array_of_tables() {
                    let t = aot.get(*n)?;
                    return Some((Node::Table(t), t.span().map(|s| s.start)));
                }
                let v = i.as_array()?.get(*n)?;
                Some((Node::Value(v), v.span().map(|s| s.start)))
            }
            Node::Value(v) => {
                let e = v.as_array()?.get(*n)?;
                Some((Node::Value(e), e.span().map(|s| s.start)))
            }
            Node::Table(_) => None,
        },
    }
}

/// The line where `path` is written, or where its deepest existing parent is.
pub fn line_of_field(src: &str, path: &FieldPath) -> Option<usize> {
    let doc = Document::parse(src).ok()?;
    let mut node = Node::Item(doc.as_item());
    let mut best = None;
    for step in &path.0 {
        let Some((next, at)) = child(node, step) else {
            break;
        };
        best = at.or(best);
        node = next;
    }
    best.map(|b| line_of(src, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[eal]\nworker_cpus = [1]\n\n[[port]]\nname = \"a\"\nipv4 = [\"1.2.3.4/24\",\n  \"bad\"]\n\n[[port]]\nname = \"b\"\nworkers = 0\n";

    fn p(steps: &[Step]) -> FieldPath {
        FieldPath(steps.to_vec())
    }

    #[test]
    fn finds_lines() {
        use Step::*;
        assert_eq!(
            line_of_field(SRC, &p(&[Key("eal".into()), Key("worker_cpus".into())])),
            Some(2)
        );
        assert_eq!(
            line_of_field(
                SRC,
                &p(&[Key("port".into()), Index(0), Key("ipv4".into()), Index(1)])
            ),
            Some(7)
        );
        assert_eq!(
            line_of_field(
                SRC,
                &p(&[Key("port".into()), Index(1), Key("workers".into())])
            ),
            Some(11)
        );
        // A missing field points at its table.
        assert_eq!(
            line_of_field(SRC, &p(&[Key("port".into()), Index(1), Key("mtu".into())])),
            Some(9)
        );
    }
}
