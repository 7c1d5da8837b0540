"""The names in the project's secret (one JSON object). Steps read them with `secret NAME` on the node."""

SECRET_KEYS: tuple[str, ...] = (
    "ADMIN_PASS",
    "DEMO_PASS",
    "DB_ROOT_PASS",
    "RABBIT_PASS",
    "METADATA_SECRET",
    "KEYSTONE_DBPASS",
    "GLANCE_DBPASS",
    "GLANCE_PASS",
    "PLACEMENT_DBPASS",
    "PLACEMENT_PASS",
    "NOVA_DBPASS",
    "NOVA_PASS",
    "NEUTRON_DBPASS",
    "NEUTRON_PASS",
    "CINDER_DBPASS",
    "CINDER_PASS",
    "SWIFT_PASS",
    "SWIFT_HASH_PATH_PREFIX",
    "SWIFT_HASH_PATH_SUFFIX",
    # Added after the first release: steps derive a stand-in on nodes whose secret predates it (steps/lib/common.sh).
    "MEMCACHE_SECRET_KEY",
)
