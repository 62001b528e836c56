/*-------------------------------------------------------------------------
 *
 * shardexec_fdw.c
 *		  The handler of the shardexec foreign-data wrapper.
 *
 * Nodes are foreign servers of this wrapper, so that their connection
 * options and credentials are kept, validated and protected the way
 * PostgreSQL keeps those of every foreign server (pg_foreign_server,
 * pg_user_mapping, their privileges and invalidation).  Distributed and
 * reference tables are not foreign tables: they keep their local
 * definition and are reached through the planner hook.
 *
 * A foreign table created directly on a node's server is refused at
 * planning with a clear error, rather than given half an implementation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "foreign/fdwapi.h"
#include "utils/lsyscache.h"

#include "shardexec/fdw.h"

PG_FUNCTION_INFO_V1(shardexec_fdw_handler);

static void get_foreign_rel_size(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);

/*
 * shardexec_fdw_handler returns the wrapper's routines.
 */
Datum
shardexec_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = get_foreign_rel_size;
	PG_RETURN_POINTER(routine);
}

/*
 * get_foreign_rel_size refuses to plan a foreign table of the wrapper.
 */
static void
get_foreign_rel_size(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
			 errmsg("foreign table \"%s\" cannot be read through the shardexec wrapper",
					get_rel_name(foreigntableid)),
			 errdetail("Servers of the shardexec wrapper are nodes; their tables are reached through distributed and reference tables."),
			 errhint("Use shardexec.create_distributed_table() or shardexec.create_reference_table() on a local table.")));
}
