/* Small C helpers for what bindgen cannot express. */
#include "wrapper.h"

int weir_rte_errno(void) { return rte_errno; }
