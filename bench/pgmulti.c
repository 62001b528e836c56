/*
 * bench/pgmulti.c: a tiny libpq client that runs one query on one or more
 * connections at the same time, combines their results, and times it.
 *
 * bench/run.sh compiles it at run time (cc ... -lpq) and uses it for every
 * latency figure of the fan-out workloads, for every arm alike: the
 * "direct" arm gives it one connection per node (or per shard) and it
 * sends the per-node query on all of them at once, waits for all, and
 * combines the partial results the way a coordinator would; the other
 * arms give it one connection to the coordinator.  The connections are
 * opened once, before the timed runs, so that no arm pays for
 * connection set-up inside the timing (shardexec and postgres_fdw keep
 * their node connections per coordinator backend, so a fresh psql per run
 * would measure connection set-up, not the query).
 *
 * Why C and not psql: psql started per run adds a process start and a
 * connection to every sample, and psql sessions run in the background
 * cannot be made to start a query at the same instant.  libpq's
 * asynchronous calls (PQsendQuery, PQconsumeInput, PQisBusy) on one
 * poll() loop do both, in a hundred lines.
 *
 * Usage:
 *   pgmulti [options] JOB...
 *     JOB is a libpq connection string, optionally followed by "@@" and
 *     the SQL that connection runs (otherwise the -q query).
 *   -q SQL     the query for jobs that do not name their own
 *   -s SQL     run once on every connection after connecting (repeatable)
 *   -n N       timed runs (default 5); -w N untimed warm-up runs (default 1)
 *   -c MODE    combine the results of all jobs: "sum" (sum every column
 *              over every row), "group" (column 1 is a key, the other
 *              columns are summed per key, then ordered by column 2
 *              descending and key ascending, -l rows kept), "rows" (count
 *              rows only); a COPY TO STDOUT result is counted in rows
 *              (lines) and bytes and thrown away
 *   -l N       rows kept by -c group (default 10)
 *   -M         print the peak (VmHWM) and current (VmRSS) memory of the
 *              server backend of the first job, read from /proc before the
 *              first run and after the last one (same machine only)
 *   -W CONN    a watcher: while the timed runs are in flight, every 5 ms,
 *              count the client backends on that server whose
 *              application_name is -A (repeatable; the maximum seen per
 *              watcher is printed)
 *   -A NAME    the application_name the watchers count (default shardexec)
 *
 * Output: one line of key=value pairs on stdout: runs, median_ms, min_ms,
 * max_ms, rows (of the last run, all jobs together), bytes (COPY only),
 * result (the combined result of the last run, as text, so that run.sh can
 * check that every arm computed the same answer), and with -M/-W
 * hwm_before_kb, hwm_after_kb, rss_after_kb, watch=<max>,<max>,...
 * Errors: "error=<first line of the message>" on stdout and exit status 1.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define MAX_JOBS 256
#define MAX_WATCH 16
#define MAX_COLS 16

typedef struct Job
{
	const char *conninfo;
	const char *sql;
	PGconn	   *conn;
	int			busy;
} Job;

typedef struct GroupRow
{
	char	   *key;
	long double vals[MAX_COLS];
} GroupRow;

static Job	jobs[MAX_JOBS];
static int	njobs;
static PGconn *watchers[MAX_WATCH];
static int	watch_max[MAX_WATCH];
static int	nwatch;
static const char *watch_app = "shardexec";

static const char *combine = "rows";
static int	group_limit = 10;

/* the result of the current run */
static long long run_rows;
static long long run_bytes;
static int	ncols;
static long double sums[MAX_COLS];
static GroupRow *groups;
static int	ngroups;
static int	groups_alloc;

/* die: print error=<first line of msg> and exit 1 */
static void
die(const char *what, const char *msg)
{
	char		line[512];
	size_t		n;

	snprintf(line, sizeof(line), "%s%s%s", what, what[0] ? ": " : "", msg ? msg : "");
	n = strcspn(line, "\n");
	line[n] = '\0';
	printf("error=%s\n", line);
	fflush(stdout);
	exit(1);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(((const GroupRow *) a)->key, ((const GroupRow *) b)->key);
}

static int
cmp_val(const void *a, const void *b)
{
	const GroupRow *x = a,
			   *y = b;

	if (x->vals[1] != y->vals[1])
		return x->vals[1] < y->vals[1] ? 1 : -1;
	return strcmp(x->key, y->key);
}

/* add_result: fold one PGresult of tuples into the run's combined result */
static void
add_result(PGresult *res)
{
	int			nrows = PQntuples(res);
	int			nf = PQnfields(res);
	int			r,
				c;

	run_rows += nrows;
	if (nf > MAX_COLS)
		nf = MAX_COLS;
	if (nf > ncols)
		ncols = nf;
	if (strcmp(combine, "sum") == 0)
	{
		for (r = 0; r < nrows; r++)
			for (c = 0; c < nf; c++)
				if (!PQgetisnull(res, r, c))
					sums[c] += strtold(PQgetvalue(res, r, c), NULL);
	}
	else if (strcmp(combine, "group") == 0)
	{
		for (r = 0; r < nrows; r++)
		{
			GroupRow   *g;

			if (ngroups == groups_alloc)
			{
				groups_alloc = groups_alloc ? groups_alloc * 2 : 1024;
				groups = realloc(groups, groups_alloc * sizeof(GroupRow));
				if (groups == NULL)
					die("out of memory", "");
			}
			g = &groups[ngroups++];
			memset(g, 0, sizeof(GroupRow));
			g->key = strdup(PQgetvalue(res, r, 0));
			for (c = 1; c < nf; c++)
				if (!PQgetisnull(res, r, c))
					g->vals[c] = strtold(PQgetvalue(res, r, c), NULL);
		}
	}
}

/* finish_groups: merge equal keys, order, keep group_limit rows */
static void
finish_groups(void)
{
	int			i,
				j,
				out = 0;

	qsort(groups, ngroups, sizeof(GroupRow), cmp_key);
	for (i = 0; i < ngroups; i = j)
	{
		groups[out] = groups[i];
		for (j = i + 1; j < ngroups && strcmp(groups[j].key, groups[i].key) == 0; j++)
		{
			int			c;

			for (c = 1; c < ncols; c++)
				groups[out].vals[c] += groups[j].vals[c];
			free(groups[j].key);
		}
		out++;
	}
	ngroups = out;
	qsort(groups, ngroups, sizeof(GroupRow), cmp_val);
	if (ngroups > group_limit)
	{
		for (i = group_limit; i < ngroups; i++)
			free(groups[i].key);
		ngroups = group_limit;
	}
}

static void
reset_run(void)
{
	int			i;

	run_rows = run_bytes = 0;
	ncols = 0;
	memset(sums, 0, sizeof(sums));
	for (i = 0; i < ngroups; i++)
		free(groups[i].key);
	ngroups = 0;
}

/* describe_result: the combined result of the run, as one word */
static void
describe_result(char *buf, size_t len)
{
	size_t		n = 0;
	int			c,
				i;

	buf[0] = '\0';
	if (strcmp(combine, "sum") == 0)
	{
		for (c = 0; c < ncols && n < len; c++)
			n += snprintf(buf + n, len - n, "%s%.0Lf", c ? "/" : "", sums[c]);
	}
	else if (strcmp(combine, "group") == 0)
	{
		long double total = 0;

		for (i = 0; i < ngroups; i++)
			total += groups[i].vals[1];
		snprintf(buf, len, "%d_groups_first_%s_total_%.0Lf", ngroups,
				 ngroups ? groups[0].key : "none", total);
	}
	else
		snprintf(buf, len, "%lld_rows", run_rows);
}

/* poll_watchers: one count per watcher, keep the maximum */
static void
poll_watchers(void)
{
	int			w;
	char		sql[512];

	snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' "
			 "AND backend_type = 'client backend'", watch_app);
	for (w = 0; w < nwatch; w++)
	{
		PGresult   *res = PQexec(watchers[w], sql);
		int			n;

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die("watcher", PQerrorMessage(watchers[w]));
		n = atoi(PQgetvalue(res, 0, 0));
		if (n > watch_max[w])
			watch_max[w] = n;
		PQclear(res);
	}
}

/* drain_job: read what is available on job j; clears busy when it is done */
static void
drain_job(Job *j)
{
	if (!PQconsumeInput(j->conn))
		die(j->conninfo, PQerrorMessage(j->conn));
	for (;;)
	{
		PGresult   *res;

		if (PQisBusy(j->conn))
			return;
		res = PQgetResult(j->conn);
		if (res == NULL)
		{
			j->busy = 0;
			return;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_TUPLES_OK:
				add_result(res);
				break;
			case PGRES_COMMAND_OK:
				break;
			case PGRES_COPY_OUT:
				{
					char	   *buf;
					int			n;

					PQclear(res);
					while ((n = PQgetCopyData(j->conn, &buf, 1)) > 0)
					{
						run_bytes += n;
						run_rows++;
						PQfreemem(buf);
					}
					if (n == 0)
						return; /* more later: wait on the socket */
					if (n == -2)
						die(j->conninfo, PQerrorMessage(j->conn));
					continue;	/* -1: the COPY is over, results follow */
				}
			default:
				die(j->conninfo, PQresultErrorMessage(res));
		}
		PQclear(res);
	}
}

/* run_once: send every job's query, wait for all, return wall ms */
static double
run_once(int watch)
{
	double		start,
				elapsed;
	int			i,
				busy;
	struct pollfd pfds[MAX_JOBS];

	reset_run();
	start = now_ms();
	for (i = 0; i < njobs; i++)
	{
		if (!PQsendQuery(jobs[i].conn, jobs[i].sql))
			die(jobs[i].conninfo, PQerrorMessage(jobs[i].conn));
		jobs[i].busy = 1;
	}
	for (;;)
	{
		int			n = 0;

		busy = 0;
		for (i = 0; i < njobs; i++)
		{
			if (!jobs[i].busy)
				continue;
			/* a COPY in progress may have data buffered already */
			drain_job(&jobs[i]);
			if (!jobs[i].busy)
				continue;
			busy++;
			pfds[n].fd = PQsocket(jobs[i].conn);
			pfds[n].events = POLLIN;
			pfds[n].revents = 0;
			n++;
		}
		if (busy == 0)
			break;
		if (poll(pfds, n, watch ? 5 : 1000) < 0 && errno != EINTR)
			die("poll", strerror(errno));
		if (watch)
			poll_watchers();
	}
	if (strcmp(combine, "group") == 0)
		finish_groups();
	elapsed = now_ms() - start;
	return elapsed;
}

/* backend_mem: VmHWM and VmRSS (kB) of a local backend */
static void
backend_mem(int pid, long *hwm, long *rss)
{
	char		path[64],
				line[256];
	FILE	   *f;

	*hwm = *rss = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f))
	{
		if (strncmp(line, "VmHWM:", 6) == 0)
			*hwm = atol(line + 6);
		else if (strncmp(line, "VmRSS:", 6) == 0)
			*rss = atol(line + 6);
	}
	fclose(f);
}

static PGconn *
connect_or_die(const char *conninfo)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
		die(conninfo, PQerrorMessage(conn));
	return conn;
}

int
main(int argc, char **argv)
{
	const char *query = NULL;
	const char *setup[32];
	int			nsetup = 0;
	int			runs = 5,
				warmups = 1,
				mem = 0;
	double	   *times;
	long		hwm0 = -1,
				rss0 = -1,
				hwm1 = -1,
				rss1 = -1;
	char		result[1024];
	int			i,
				k;

	for (i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (strcmp(a, "-q") == 0 && i + 1 < argc)
			query = argv[++i];
		else if (strcmp(a, "-s") == 0 && i + 1 < argc && nsetup < 32)
			setup[nsetup++] = argv[++i];
		else if (strcmp(a, "-n") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(a, "-w") == 0 && i + 1 < argc)
			warmups = atoi(argv[++i]);
		else if (strcmp(a, "-c") == 0 && i + 1 < argc)
			combine = argv[++i];
		else if (strcmp(a, "-l") == 0 && i + 1 < argc)
			group_limit = atoi(argv[++i]);
		else if (strcmp(a, "-M") == 0)
			mem = 1;
		else if (strcmp(a, "-W") == 0 && i + 1 < argc && nwatch < MAX_WATCH)
			watchers[nwatch++] = connect_or_die(argv[++i]);
		else if (strcmp(a, "-A") == 0 && i + 1 < argc)
			watch_app = argv[++i];
		else if (a[0] == '-')
			die("usage", "pgmulti [-q sql] [-s sql] [-n runs] [-w warmups] [-c sum|group|rows] "
				"[-l limit] [-M] [-W conninfo] [-A appname] conninfo[@@sql]...");
		else if (njobs < MAX_JOBS)
		{
			char	   *copy = strdup(a);
			char	   *sep = strstr(copy, "@@");

			if (sep)
			{
				*sep = '\0';
				jobs[njobs].sql = sep + 2;
			}
			else
				jobs[njobs].sql = NULL;
			jobs[njobs].conninfo = copy;
			njobs++;
		}
	}
	if (njobs == 0 || runs < 1)
		die("usage", "no connection given, or -n < 1");
	for (i = 0; i < njobs; i++)
	{
		if (jobs[i].sql == NULL)
			jobs[i].sql = query;
		if (jobs[i].sql == NULL)
			die("usage", "a job has no query (-q)");
		jobs[i].conn = connect_or_die(jobs[i].conninfo);
		for (k = 0; k < nsetup; k++)
		{
			PGresult   *res = PQexec(jobs[i].conn, setup[k]);

			if (PQresultStatus(res) != PGRES_COMMAND_OK &&
				PQresultStatus(res) != PGRES_TUPLES_OK)
				die(setup[k], PQresultErrorMessage(res));
			PQclear(res);
		}
	}
	if (mem)
		backend_mem(PQbackendPID(jobs[0].conn), &hwm0, &rss0);

	for (i = 0; i < warmups; i++)
		run_once(0);
	times = calloc(runs, sizeof(double));
	for (i = 0; i < runs; i++)
		times[i] = run_once(nwatch > 0);
	if (mem)
		backend_mem(PQbackendPID(jobs[0].conn), &hwm1, &rss1);
	describe_result(result, sizeof(result));
	qsort(times, runs, sizeof(double), cmp_double);

	printf("runs=%d median_ms=%.2f min_ms=%.2f max_ms=%.2f rows=%lld bytes=%lld result=%s",
		   runs, runs % 2 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2,
		   times[0], times[runs - 1], run_rows, run_bytes, result);
	if (mem)
		printf(" hwm_before_kb=%ld hwm_after_kb=%ld rss_before_kb=%ld rss_after_kb=%ld",
			   hwm0, hwm1, rss0, rss1);
	if (nwatch)
	{
		printf(" watch=");
		for (i = 0; i < nwatch; i++)
			printf("%s%d", i ? "," : "", watch_max[i]);
	}
	printf("\n");

	for (i = 0; i < njobs; i++)
		PQfinish(jobs[i].conn);
	for (i = 0; i < nwatch; i++)
		PQfinish(watchers[i]);
	return 0;
}
