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

/* shardexec.use_2pc */
typedef enum ShardexecUse2pc
{
	SHARDEXEC_2PC_OFF,
	SHARDEXEC_2PC_AUTO,
	SHARDEXEC_2PC_ON
} ShardexecUse2pcMode;

/* shardexec.test_2pc_fault: where a test stops a two-phase commit */
typedef enum ShardexecTestFault
{
	SHARDEXEC_FAULT_NONE,
	SHARDEXEC_FAULT_ERROR_AFTER_PREPARE,
	SHARDEXEC_FAULT_SLEEP_AFTER_PREPARE,
	SHARDEXEC_FAULT_SLEEP_BEFORE_COMMIT_PREPARED
} ShardexecTestFault;

/* GUC variables, in src/shardexec.c */
extern bool ShardexecBinaryTransfer;
extern int	ShardexecConnectTimeout;
extern int	ShardexecConnectionIdleTimeout;
extern bool ShardexecEnablePushdown;
extern bool ShardexecLogRemoteSql;
extern int	ShardexecMaxConnectionsPerQuery;
extern int	ShardexecMaxIdleConnectionsPerNode;
extern int	ShardexecMaxSharedPoolSize;
extern int	ShardexecNodeResponseTimeout;
extern char *ShardexecPlugins;
extern int	ShardexecPoolWaitTimeout;
extern int	ShardexecRecoveryInterval;
extern int	ShardexecRecoveryStepTimeout;
extern int	ShardexecRemoteLockTimeout;
extern int	ShardexecTest2pcFault;
extern int	ShardexecUse2pc;
extern bool ShardexecUsePipeline;

/* subsystem initialisation, called from _PG_init */
extern void InitMetadataCache(void);
extern void InitConnectionManagement(void);
extern void InitSharedPool(void);
extern void InitRecoveryWorker(void);
extern void InitPlannerHooks(void);
extern void InitUtilityHook(void);
extern void RegisterShardexecCustomScans(void);

#endif							/* SHARDEXEC_H */
