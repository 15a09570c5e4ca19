/* The DPDK headers Weir binds. Keep this list short: every header here costs build time. */
#include <rte_config.h>
#include <rte_version.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_prefetch.h>
#include <rte_dev.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_ether.h>
#include <rte_thash.h>

/* rte_errno is a thread-local variable, which bindgen cannot bind; shim.c reads it. */
int weir_rte_errno(void);
