"""sqlite DDL mirroring the iCAT tables and columns that GenQuery exposes.

Column names follow the real iCAT so that the GenQuery column map reads like the server's own
(general_query_setup.cpp).  Numeric columns are INTEGER so that comparisons with quoted literals
are numeric, as the real server's PostgreSQL casts make them.
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS r_id_seq (next_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS r_zone_main (zone_id INTEGER PRIMARY KEY, zone_name TEXT UNIQUE, zone_type_name TEXT);
CREATE TABLE IF NOT EXISTS r_coll_main (
    coll_id INTEGER PRIMARY KEY, parent_coll_name TEXT NOT NULL, coll_name TEXT NOT NULL UNIQUE,
    coll_owner_name TEXT, coll_owner_zone TEXT, coll_map_id INTEGER DEFAULT 0, coll_inheritance TEXT DEFAULT '',
    coll_type TEXT DEFAULT '', coll_info1 TEXT DEFAULT '', coll_info2 TEXT DEFAULT '', r_comment TEXT DEFAULT '',
    create_ts TEXT, modify_ts TEXT);
CREATE INDEX IF NOT EXISTS idx_coll_parent ON r_coll_main (parent_coll_name);
CREATE TABLE IF NOT EXISTS r_data_main (
    data_id INTEGER NOT NULL, coll_id INTEGER NOT NULL, data_name TEXT NOT NULL, data_repl_num INTEGER NOT NULL,
    data_version TEXT DEFAULT '', data_type_name TEXT DEFAULT 'generic', data_size INTEGER DEFAULT 0,
    resc_id INTEGER, data_path TEXT, data_owner_name TEXT, data_owner_zone TEXT, data_is_dirty INTEGER DEFAULT 0,
    data_status TEXT DEFAULT '', data_checksum TEXT DEFAULT '', data_expiry_ts TEXT DEFAULT '00000000000',
    data_map_id INTEGER DEFAULT 0, data_mode TEXT DEFAULT '', r_comment TEXT DEFAULT '', create_ts TEXT,
    modify_ts TEXT, access_ts TEXT,
    UNIQUE (coll_id, data_name, data_repl_num, data_version));
CREATE INDEX IF NOT EXISTS idx_data_id ON r_data_main (data_id);
CREATE INDEX IF NOT EXISTS idx_data_resc ON r_data_main (resc_id);
CREATE TABLE IF NOT EXISTS r_meta_main (
    meta_id INTEGER PRIMARY KEY, meta_namespace TEXT DEFAULT '', meta_attr_name TEXT NOT NULL,
    meta_attr_value TEXT NOT NULL, meta_attr_unit TEXT DEFAULT '', r_comment TEXT DEFAULT '', create_ts TEXT,
    modify_ts TEXT);
CREATE INDEX IF NOT EXISTS idx_meta_avu ON r_meta_main (meta_attr_name, meta_attr_value, meta_attr_unit);
CREATE TABLE IF NOT EXISTS r_objt_metamap (
    object_id INTEGER NOT NULL, meta_id INTEGER NOT NULL, create_ts TEXT, modify_ts TEXT,
    UNIQUE (object_id, meta_id));
CREATE INDEX IF NOT EXISTS idx_metamap_meta ON r_objt_metamap (meta_id);
CREATE TABLE IF NOT EXISTS r_resc_main (
    resc_id INTEGER PRIMARY KEY, resc_name TEXT NOT NULL UNIQUE, zone_name TEXT, resc_type_name TEXT,
    resc_class_name TEXT DEFAULT 'cache', resc_net TEXT DEFAULT '', resc_def_path TEXT DEFAULT '',
    free_space TEXT DEFAULT '', free_space_ts TEXT DEFAULT '', resc_info TEXT DEFAULT '', r_comment TEXT DEFAULT '',
    resc_status TEXT DEFAULT '', create_ts TEXT, modify_ts TEXT, resc_children TEXT DEFAULT '',
    resc_context TEXT DEFAULT '', resc_parent TEXT DEFAULT '', resc_parent_context TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS r_user_main (
    user_id INTEGER PRIMARY KEY, user_name TEXT NOT NULL, user_type_name TEXT, zone_name TEXT,
    user_info TEXT DEFAULT '', r_comment TEXT DEFAULT '', create_ts TEXT, modify_ts TEXT,
    UNIQUE (user_name, zone_name));
CREATE TABLE IF NOT EXISTS r_user_password (user_id INTEGER PRIMARY KEY, rcat_password TEXT);
CREATE TABLE IF NOT EXISTS r_user_group (group_user_id INTEGER, user_id INTEGER, UNIQUE (group_user_id, user_id));
CREATE TABLE IF NOT EXISTS r_objt_access (
    object_id INTEGER NOT NULL, user_id INTEGER NOT NULL, access_type_id INTEGER NOT NULL,
    UNIQUE (object_id, user_id));
CREATE TABLE IF NOT EXISTS r_tokn_main (token_namespace TEXT, token_id INTEGER, token_name TEXT);
"""

ACCESS_TOKENS = {
    "null": 1000, "execute": 1010, "read_annotation": 1020, "read_system_metadata": 1030, "read_metadata": 1040,
    "read_object": 1050, "write_annotation": 1060, "create_metadata": 1070, "modify_metadata": 1080,
    "delete_metadata": 1090, "administer_object": 1100, "create_object": 1110, "modify_object": 1120,
    "delete_object": 1130, "create_token": 1140, "delete_token": 1150, "curate": 1160, "own": 1200,
}
"""Access levels as the real r_tokn_main 'access_type' namespace numbers them (catalog_utilities.hpp)."""
