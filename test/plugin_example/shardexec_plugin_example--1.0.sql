/* shardexec_plugin_example--1.0.sql */

\echo Use "CREATE EXTENSION shardexec_plugin_example" to load this file. \quit

-- the plugin: register it with shardexec.register_plugin(name, 'plugin_example_handler')
CREATE FUNCTION plugin_example_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

-- a plugin on the execute pipeline only that does nothing (benchmarks)
CREATE FUNCTION plugin_example_noop_handler(internal) RETURNS internal
AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

-- handlers of the wrong kind, which register_plugin must refuse
CREATE FUNCTION plugin_example_not_a_routine(internal) RETURNS internal
AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
CREATE FUNCTION plugin_example_future_version(internal) RETURNS internal
AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

-- calls per pipeline callback in this backend, and their reset
CREATE FUNCTION plugin_example_calls(OUT callback text, OUT calls bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION plugin_example_reset() RETURNS void
AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
