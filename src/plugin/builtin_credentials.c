/*-------------------------------------------------------------------------
 *
 * builtin_credentials.c
 *		  The credentials plugin: passwords or tokens from a file or a
 *		  command, for the connect pipeline.
 *
 * Before calling the next plugin, credentials sets the connection option
 * "password" (or the option named by "keyword") to a secret it reads:
 *
 *	 file		a file of lines "node:user:secret" (as in .pgpass: "*"
 *				matches any node or user, the secret is the rest of the
 *				line, "#" starts a comment), or of one line holding the
 *				secret for everything; relative paths are relative to the
 *				data directory.  A file that does not exist gives no
 *				secret, and the connection is made with the options it
 *				had.  Default: "shardexec_credentials".
 *	 command	a shell command whose first line of output is the secret
 *				(a token from a vault, for instance); it must exit with 0.
 *				Instead of file.
 * In both, %n stands for the node's name, %u for the user name, %h for the
 * host, %p for the port and %% for %.  A secret is kept for ttl_s seconds
 * (default 60) per node and user, so a token command does not run for
 * every connection; when the node rejects the password, the secret is read
 * again at once and the connection tried once more (the secret was
 * rotated).  "user" sets the user name as well.
 *
 * Who gets the secrets.  shardexec.plugins can be set by any role, and a
 * role with USAGE on a node's server can write its own user mapping, so
 * the secrets must not go to whoever asks: they are used only for the
 * local roles listed in the option "roles" (members of them, by
 * privileges), and, without it, for superusers only.  Registering
 * credentials with "file" needs the privileges of pg_read_server_files,
 * with "command" those of pg_execute_server_program (checked by the
 * validator, as the registering role), since the file is read and the
 * command run by the server's operating system user.
 *
 * The secrets live in the backend's memory only, and never appear in an
 * error message.  A non-superuser needs no password in its user mapping
 * when credentials gives one: the rule that a non-superuser connects with
 * a password is checked on the options the connect pipeline leaves (and
 * again on the connection: the node must have asked for it).  With a
 * plugin on the connect pipeline, the pool keeps each local role's
 * connections apart, so a connection made with a role's secret is never
 * reused by another role (after SET ROLE, or in a SECURITY DEFINER
 * function).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "shardexec/plugin.h"

PG_FUNCTION_INFO_V1(shardexec_credentials_handler);

typedef struct CredentialsOptions
{
	char	   *file;
	char	   *command;
	char	   *keyword;
	char	   *user;
	int			ttlSeconds;
	List	   *roles;			/* OIDs of the roles that get secrets; NIL:
								 * superusers only */
	HTAB	   *cache;
} CredentialsOptions;

typedef struct SecretKey
{
	char		nodeName[NAMEDATALEN];
	char		userName[NAMEDATALEN];
} SecretKey;

typedef struct CachedSecret
{
	SecretKey	key;			/* hash key, must be first */
	bool		found;			/* false: no secret for this node and user */
	char	   *secret;			/* in the chain's memory */
	TimestampTz expiresAt;
} CachedSecret;

static const char *const credentials_keys[] = {"file", "command", "keyword", "user", "ttl_s",
"roles", NULL};

/*
 * parse_roles returns the OIDs of the roles named in the option "roles",
 * an array of role names; a role that does not exist is an error, or with
 * missingOk (a role dropped since the registration) left out.
 */
static List *
parse_roles(Jsonb *options, bool missingOk)
{
	JsonbValue	value;
	JsonbIterator *it;
	JsonbIteratorToken token;
	Jsonb	   *array;
	List	   *roles = NIL;
	int			level = 0;

	if (getKeyJsonValueFromContainer(&options->root, "roles", 5, &value) == NULL)
		return NIL;
	if (value.type != jbvBinary || !JsonContainerIsArray(value.val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"roles\" must be an array of role names")));
	array = JsonbValueToJsonb(&value);
	it = JsonbIteratorInit(&array->root);
	while ((token = JsonbIteratorNext(&it, &value, true)) != WJB_DONE)
	{
		if (token == WJB_BEGIN_ARRAY || token == WJB_BEGIN_OBJECT)
			level++;
		else if (token == WJB_END_ARRAY || token == WJB_END_OBJECT)
			level--;
		else if (token == WJB_ELEM && level == 1)
		{
			char	   *name;
			Oid			role;

			if (value.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"roles\" must be an array of role names")));
			name = pnstrdup(value.val.string.val, value.val.string.len);
			role = get_role_oid(name, missingOk);
			if (OidIsValid(role))
				roles = lappend_oid(roles, role);
		}
	}
	return roles;
}

/*
 * credentials_parse reads options into parsed; with missingOk, roles that
 * no longer exist are left out.
 */
static void
credentials_parse(Jsonb *options, CredentialsOptions *parsed, bool missingOk)
{
	double		ttl = 60;
	JsonbValue	rolesValue;

	PluginCheckOptionKeys(options, "credentials", credentials_keys);
	parsed->file = PluginOptionString(options, "file");
	parsed->command = PluginOptionString(options, "command");
	parsed->keyword = PluginOptionString(options, "keyword");
	parsed->user = PluginOptionString(options, "user");
	if (parsed->file != NULL && parsed->command != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"file\" and \"command\" cannot be used together")));
	if (parsed->file == NULL && parsed->command == NULL)
		parsed->file = pstrdup("shardexec_credentials");
	if ((parsed->file != NULL && parsed->file[0] == '\0') ||
		(parsed->command != NULL && parsed->command[0] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"file\" and \"command\" must not be empty")));
	if (parsed->keyword == NULL)
		parsed->keyword = pstrdup("password");
	(void) PluginOptionNumber(options, "ttl_s", &ttl);
	if (ttl < 0 || ttl > 86400 * 365)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl_s must be between 0 and %d", 86400 * 365)));
	parsed->ttlSeconds = (int) ttl;
	parsed->roles = parse_roles(options, missingOk);
	/* "roles" names no role (left): nobody, rather than superusers only */
	if (parsed->roles == NIL &&
		getKeyJsonValueFromContainer(&options->root, "roles", 5, &rolesValue) != NULL)
		parsed->roles = list_make1_oid(InvalidOid);
}

/*
 * credentials_validate checks the options, and that the registering role
 * may have the server read the file or run the command.
 */
static void
credentials_validate(Jsonb *options)
{
	CredentialsOptions parsed;

	credentials_parse(options, &parsed, false);
	if (parsed.command != NULL &&
		!has_privs_of_role(GetUserId(), ROLE_PG_EXECUTE_SERVER_PROGRAM))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to have credentials run a command"),
				 errdetail("Only roles with privileges of the \"pg_execute_server_program\" role may use the option \"command\".")));
	if (parsed.file != NULL &&
		!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to have credentials read a file"),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" role may use the option \"file\".")));
}

/*
 * may_use_secrets says whether local role userId gets the secrets: a
 * member of one of the roles of the option "roles", or, without it, a
 * superuser.
 */
static bool
may_use_secrets(CredentialsOptions *options, Oid userId)
{
	ListCell   *lc;

	if (options->roles == NIL)
		return superuser_arg(userId);
	foreach(lc, options->roles)
	{
		if (OidIsValid(lfirst_oid(lc)) && has_privs_of_role(userId, lfirst_oid(lc)))
			return true;
	}
	return false;
}

/*
 * credentials_init parses the options and makes the secret cache, in the
 * chain's memory.
 */
static void *
credentials_init(const char *pluginName, Jsonb *options)
{
	CredentialsOptions *parsed = palloc0(sizeof(CredentialsOptions));
	HASHCTL		ctl;

	credentials_parse(options, parsed, true);
	ctl.keysize = sizeof(SecretKey);
	ctl.entrysize = sizeof(CachedSecret);
	ctl.hcxt = CurrentMemoryContext;
	parsed->cache = hash_create("shardexec credentials", 8, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return parsed;
}

/*
 * substitute replaces %n, %u, %h, %p and %% in pattern.
 */
static char *
substitute(const char *pattern, ShardexecConnectInfo *info, const char *user)
{
	StringInfoData buf;
	const char *p;

	initStringInfo(&buf);
	for (p = pattern; *p != '\0'; p++)
	{
		if (*p != '%' || p[1] == '\0')
		{
			appendStringInfoChar(&buf, *p);
			continue;
		}
		p++;
		switch (*p)
		{
			case 'n':
				appendStringInfoString(&buf, info->node_name);
				break;
			case 'u':
				appendStringInfoString(&buf, user);
				break;
			case 'h':
				appendStringInfoString(&buf, info->host != NULL ? info->host : "");
				break;
			case 'p':
				appendStringInfo(&buf, "%d", info->port);
				break;
			default:
				appendStringInfoChar(&buf, *p);
				break;
		}
	}
	return buf.data;
}

/* field_matches: a .pgpass-style field ("*" matches anything) */
static bool
field_matches(const char *field, int len, const char *value)
{
	return (len == 1 && field[0] == '*') ||
		((int) strlen(value) == len && strncmp(field, value, len) == 0);
}

/*
 * read_secret_file returns the secret of the file path for node and user,
 * or NULL.
 */
static char *
read_secret_file(const char *path, const char *node, const char *user)
{
	FILE	   *file = AllocateFile(path, "r");
	char		line[1024];
	char	   *secret = NULL;
	char	   *single = NULL;
	int			lines = 0;

	if (file == NULL)
	{
		if (errno == ENOENT)
			return NULL;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open credentials file \"%s\": %m", path)));
	}
	while (secret == NULL && fgets(line, sizeof(line), file) != NULL)
	{
		char	   *first;
		char	   *second;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		lines++;
		first = strchr(line, ':');
		second = first != NULL ? strchr(first + 1, ':') : NULL;
		if (first == NULL)
		{
			single = pstrdup(line);
			continue;
		}
		if (second == NULL)
			continue;
		if (field_matches(line, first - line, node) &&
			field_matches(first + 1, second - first - 1, user))
			secret = pstrdup(second + 1);
	}
	FreeFile(file);
	if (secret == NULL && lines == 1)
		secret = single;
	return secret;
}

/*
 * run_secret_command returns the first line of command's output; the
 * command must succeed.
 */
static char *
run_secret_command(const char *command)
{
	FILE	   *pipe = OpenPipeStream(command, "r");
	char		line[4096];
	char		rest[1024];
	bool		got;
	int			rc;

	if (pipe == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not run credentials command: %m")));
	got = fgets(line, sizeof(line), pipe) != NULL;
	/* read the rest, so the command is not killed by SIGPIPE */
	while (fgets(rest, sizeof(rest), pipe) != NULL)
		;
	rc = ClosePipeStream(pipe);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("credentials command failed with exit status %d",
						WIFEXITED(rc) ? WEXITSTATUS(rc) : rc)));
	if (!got)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("credentials command printed nothing")));
	line[strcspn(line, "\r\n")] = '\0';
	return pstrdup(line);
}

/*
 * get_secret returns the secret for info's node and user (NULL: none),
 * from the cache unless it expired or refresh is set.
 */
static char *
get_secret(CredentialsOptions *options, ShardexecConnectInfo *info, const char *user,
		   bool refresh)
{
	SecretKey	key;
	CachedSecret *cached;
	bool		found;
	char	   *secret;
	TimestampTz now = GetCurrentTimestamp();

	memset(&key, 0, sizeof(key));
	strlcpy(key.nodeName, info->node_name, sizeof(key.nodeName));
	strlcpy(key.userName, user, sizeof(key.userName));
	cached = hash_search(options->cache, &key, HASH_FIND, NULL);
	if (cached != NULL && !refresh && now < cached->expiresAt)
		return cached->found ? cached->secret : NULL;

	if (options->command != NULL)
		secret = run_secret_command(substitute(options->command, info, user));
	else
	{
		char	   *path = substitute(options->file, info, user);

		if (!is_absolute_path(path))
			path = psprintf("%s/%s", DataDir, path);
		secret = read_secret_file(path, info->node_name, user);
	}

	cached = hash_search(options->cache, &key, HASH_ENTER, &found);
	if (found && cached->secret != NULL)
		pfree(cached->secret);
	cached->found = secret != NULL;
	cached->secret = secret != NULL ?
		MemoryContextStrdup(GetMemoryChunkContext(options), secret) : NULL;
	cached->expiresAt = TimestampTzPlusMilliseconds(now, (int64) options->ttlSeconds * 1000);
	return secret;
}

/*
 * credentials_connect is the connect callback: it sets the secret (for a
 * role allowed to have it) and calls the next plugin, once more with a
 * fresh secret if the node rejected the cached one.
 */
static PGconn *
credentials_connect(ShardexecPlugin *self, ShardexecConnectInfo *info,
					ShardexecConnectChain *chain)
{
	CredentialsOptions *options = (CredentialsOptions *) self->private_data;
	const char *user;
	char	   *secret;
	PGconn	   *conn;

	if (!may_use_secrets(options, info->user_id))
		return chain->next(chain, info);
	if (options->user != NULL)
		info->set_option(info, "user", options->user);
	user = info->get_option(info, "user");
	if (user == NULL)
		user = "";
	secret = get_secret(options, info, user, false);
	if (secret != NULL)
		info->set_option(info, options->keyword, secret);
	conn = chain->next(chain, info);

	/* rejected: the secret may have been rotated, read it again once */
	if (conn == NULL && secret != NULL && info->error != NULL &&
		strstr(info->error, "authentication failed") != NULL)
	{
		char	   *fresh = get_secret(options, info, user, true);

		if (fresh != NULL && strcmp(fresh, secret) != 0)
		{
			info->set_option(info, options->keyword, fresh);
			conn = chain->next(chain, info);
		}
	}
	return conn;
}

static const ShardexecPluginRoutine credentials_routine = {
	SHARDEXEC_PLUGIN_ROUTINE_INIT,
	.description = "connect: password or token from a file or a command, cached with a time to live",
	.default_weight = 900,
	.validate_options = credentials_validate,
	.init = credentials_init,
	.connect = credentials_connect,
};

/*
 * shardexec_credentials_handler is the handler of the credentials plugin.
 */
Datum
shardexec_credentials_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&credentials_routine);
}
