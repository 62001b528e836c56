/*-------------------------------------------------------------------------
 *
 * fdw.h
 *		  The shardexec foreign-data wrapper and remote SQL generation.
 *
 * src/fdw/shardexec_fdw.c is the wrapper's handler, option.c its
 * validator, deparse.c writes the SQL sent to the nodes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_FDW_H
#define SHARDEXEC_FDW_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

/* option.c */
extern bool IsShardexecServer(Oid serverId);
extern Oid	ShardexecFdwId(void);

/* deparse.c */
extern void AppendQualifiedShardName(StringInfo buf, Oid relid, int64 shardId);
extern void AppendColumnList(StringInfo buf, Relation rel, const char *prefix,
							 bool includeGenerated);
extern char *DeparseShardSelect(Relation rel, int64 shardId);
extern char *DeparseShardInsertPrefix(Relation rel, int64 shardId);
extern void AppendStringLiteral(StringInfo buf, const char *val);

#endif							/* SHARDEXEC_FDW_H */
