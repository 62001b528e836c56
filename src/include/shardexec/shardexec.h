/*-------------------------------------------------------------------------
 *
 * shardexec.h
 *		  Settings and entry points shared by every shardexec subsystem.
 *
 * The GUC variables are defined in src/shardexec.c, in one place and in
 * alphabetical order; each subsystem that reads one includes this header.
 * The Init functions are called once from _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARDEXEC_H
#define SHARDEXEC_H

/* GUC variables, in src/shardexec.c */
extern bool ShardexecBinaryTransfer;
extern int	ShardexecConnectTimeout;
extern bool ShardexecEnablePushdown;
extern bool ShardexecLogRemoteSql;
extern int	ShardexecMaxConnectionsPerQuery;
extern bool ShardexecUsePipeline;

/* subsystem initialisation, called from _PG_init */
extern void InitMetadataCache(void);
extern void InitConnectionManagement(void);
extern void InitPlannerHooks(void);
extern void InitUtilityHook(void);
extern void RegisterShardexecCustomScans(void);

#endif							/* SHARDEXEC_H */
