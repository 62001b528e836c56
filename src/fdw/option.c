/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Options of the shardexec foreign-data wrapper.
 *
 * A node's foreign server takes host, port, dbname and any other libpq
 * connection option that is not about the user; its user mappings take
 * user and password (and the libpq options marked as secret or about the
 * user, such as sslcert and sslkey).  The valid libpq options are asked
 * of the libpq the server runs with, as postgres_fdw does, so that a
 * newer libpq's options are accepted.  Options libpq may not be given
 * through a foreign server (client_encoding, replication, fallback
 * application name) are refused.  As in postgres_fdw, only a superuser
 * may put sslcert or sslkey, files of the coordinator, in a user mapping.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "shardexec/fdw.h"

typedef struct ShardexecOption
{
	const char *keyword;
	Oid			context;		/* ForeignServerRelationId or UserMappingRelationId */
} ShardexecOption;

static ShardexecOption *validOptions = NULL;

static void init_options(void);
static bool is_valid_option(const char *keyword, Oid context);

PG_FUNCTION_INFO_V1(shardexec_fdw_validator);

/*
 * shardexec_fdw_validator checks the options of a CREATE or ALTER of a
 * server, user mapping or the wrapper itself.
 */
Datum
shardexec_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *cell;

	init_options();

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (!is_valid_option(def->defname, catalog))
		{
			ShardexecOption *opt;
			StringInfoData buf;

			initStringInfo(&buf);
			for (opt = validOptions; opt->keyword; opt++)
			{
				if (catalog == opt->context)
					appendStringInfo(&buf, "%s%s", (buf.len > 0) ? ", " : "",
									 opt->keyword);
			}
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 buf.len > 0 ?
					 errhint("Valid options in this context are: %s.", buf.data) :
					 errhint("There are no valid options in this context.")));
		}

		/*
		 * As in postgres_fdw: the certificate and key are files of the
		 * coordinator, which its libpq reads as the server's OS user; a
		 * role that is not a superuser must not have its connections use
		 * them.
		 */
		if (catalog == UserMappingRelationId && !superuser() &&
			(strcmp(def->defname, "sslcert") == 0 || strcmp(def->defname, "sslkey") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("sslcert and sslkey are superuser-only"),
					 errhint("User mappings with the sslcert or sslkey options set may only be created or modified by a superuser.")));

		if (strcmp(def->defname, "port") == 0)
		{
			char	   *value = defGetString(def);
			char	   *end;
			long		port;

			errno = 0;
			port = strtol(value, &end, 10);
			if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid port \"%s\"", value),
						 errdetail("A port is an integer between 1 and 65535.")));
		}
	}

	PG_RETURN_VOID();
}

/*
 * init_options builds the list of valid options from libpq's
 * connection defaults, once per backend.
 */
static void
init_options(void)
{
	PQconninfoOption *lopts;
	PQconninfoOption *lopt;
	ShardexecOption *opt;
	int			n = 0;

	if (validOptions != NULL)
		return;

	lopts = PQconndefaults();
	if (lopts == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not get libpq's default connection options.")));

	for (lopt = lopts; lopt->keyword; lopt++)
		n++;

	validOptions = MemoryContextAllocZero(TopMemoryContext,
										  sizeof(ShardexecOption) * (n + 1));
	opt = validOptions;
	for (lopt = lopts; lopt->keyword; lopt++)
	{
		/* debug options, and those shardexec sets itself */
		if (strchr(lopt->dispchar, 'D') ||
			strcmp(lopt->keyword, "fallback_application_name") == 0 ||
			strcmp(lopt->keyword, "client_encoding") == 0 ||
			strcmp(lopt->keyword, "replication") == 0)
			continue;

		opt->keyword = MemoryContextStrdup(TopMemoryContext, lopt->keyword);
		if (strcmp(lopt->keyword, "user") == 0 ||
			strchr(lopt->dispchar, '*') ||
			strcmp(lopt->keyword, "sslcert") == 0 ||
			strcmp(lopt->keyword, "sslkey") == 0)
			opt->context = UserMappingRelationId;
		else
			opt->context = ForeignServerRelationId;
		opt++;
	}
	PQconninfoFree(lopts);
}

/*
 * is_valid_option says whether keyword is a valid option in context.
 */
static bool
is_valid_option(const char *keyword, Oid context)
{
	ShardexecOption *opt;

	for (opt = validOptions; opt->keyword; opt++)
	{
		if (opt->context == context && strcmp(opt->keyword, keyword) == 0)
			return true;
	}
	return false;
}

/*
 * ShardexecFdwId returns the OID of the shardexec foreign-data wrapper.
 */
Oid
ShardexecFdwId(void)
{
	return GetForeignDataWrapperByName("shardexec", false)->fdwid;
}

/*
 * IsShardexecServer says whether serverId is a server of the shardexec
 * wrapper.
 */
bool
IsShardexecServer(Oid serverId)
{
	ForeignServer *server = GetForeignServer(serverId);

	return server->fdwid == GetForeignDataWrapperByName("shardexec", false)->fdwid;
}
