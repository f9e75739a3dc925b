#!/usr/bin/env python3
"""Load benchmark: mailbeacon against nginx as the classic tracking pixel, same client, same load.

Run with `bench/run` (installs nginx and wrk from Debian's packages when missing, builds the
release binary). Everything listens on 127.0.0.1 only and every load run stops by itself.

mailbeacon runs once per storage engine (--backends, default sqlite,postgres): on a fresh SQLite
file, and on PostgreSQL (--postgres, default postgres://postgres@127.0.0.1:5432/test) in a fresh
schema created for the run and dropped at its end. If PostgreSQL is asked for but cannot be
reached, the run stops with an error before loading anything: it is never skipped silently.

For each side it loads many distinct recipients' URLs (not one URL repeated) with wrk at the same
concurrency and prints requests per second, p50/p99 latency, mailbeacon's peak memory during that
load, and the ratio mailbeacon/nginx; then once more for pixels below saturation (--pace-ms: each
connection pauses between requests), where the latency is the service's own rather than a queue's.
A hot-message load follows (--hot-rounds rounds in a row, all connections on one message's
pixel: a forwarded newsletter, a scanner re-fetching, a replayed URL), each round's rate compared
with the fresh-recipient pixel load's: the cost of an event must not grow with its message's
history. After every load it measures the catch-up: seconds from the end of the load until
`/readyz` says no answered event waits in the journal, i.e. every answered event is in the
database and its reports. Afterwards it checks that every request mailbeacon answered 200 or 302
is a row in its database (the SQLite file, or the schema through psql).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EMAIL = "<html><body><p>Hello</p><a href=\"https://shop.example.com/offer?x=1\">offer</a></body></html>"
NGINX_SECRET = "bench-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base, token, method, path, body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_ticks(pids, by_thread=False):
    """CPU time (user + system, in clock ticks) of processes, or of one process's threads by name."""
    out = {}
    for pid in pids:
        stats = [f"/proc/{pid}/task/{t}/stat" for t in os.listdir(f"/proc/{pid}/task")] if by_thread \
            else [f"/proc/{pid}/stat"]
        for path in stats:
            try:
                with open(path) as f:
                    line = f.read()
            except OSError:
                continue  # gone meanwhile
            name = line[line.index("(") + 1:line.rindex(")")] if by_thread else "all"
            fields = line[line.rindex(")") + 2:].split()
            out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


def cpu_us_per_request(before, after, requests):
    """Microseconds of CPU per request, by thread name, from two cpu_ticks readings."""
    tick = os.sysconf("SC_CLK_TCK")
    return {k: (after.get(k, 0) - before.get(k, 0)) * 1e6 / tick / max(requests, 1) for k in after}


def postgres_pids():
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0), so the next reading is the peak of one phase.
    Returns False where that is not allowed; the readings are then peaks since the start."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Postgres:
    """The PostgreSQL server the bench runs mailbeacon on, reached with psql (python has no driver
    here). Each run gets its own schema, dropped at the end."""

    PREFIX = "mbbench_"

    def __init__(self, url):
        self.url = url
        self.schema = None

    def psql(self, sql, check=True):
        out = subprocess.run(
            ["psql", self.url, "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=120,
            env=dict(os.environ, PGCONNECT_TIMEOUT="5"),
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"psql failed ({sql!r}): {out.stderr.strip()}")
        return out

    def check_reachable(self):
        if shutil.which("psql") is None:
            sys.exit("PostgreSQL: psql is not installed (apt-get install postgresql-client), "
                     "or run only SQLite with --backends sqlite")
        out = self.psql("SELECT current_setting('server_version'), current_setting('synchronous_commit'), "
                        "current_setting('fsync'), current_setting('shared_buffers')", check=False)
        if out.returncode != 0:
            sys.exit(f"PostgreSQL is not reachable at {self.url}: {out.stderr.strip() or 'psql failed'}\n"
                     "start it (or pass --postgres URL), or run only SQLite with --backends sqlite")
        version, sync, fsync, buffers = out.stdout.strip().split("\t")
        return f"PostgreSQL {version} (synchronous_commit={sync}, fsync={fsync}, shared_buffers={buffers})"

    def create_schema(self):
        now = int(time.time())
        # Schemas of earlier runs that were killed before their clean-up (a day old at least).
        for name in self.psql(f"SELECT nspname FROM pg_namespace WHERE nspname LIKE '{self.PREFIX}%'").stdout.split():
            started = name[len(self.PREFIX):].split("_")[0]
            if started.isdigit() and now - int(started) > 86400:
                self.psql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE', check=False)
        self.schema = f"{self.PREFIX}{now}_{os.getpid()}"
        self.psql(f'CREATE SCHEMA "{self.schema}"')
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}options=-csearch_path%3D{self.schema}"

    def drop_schema(self):
        if self.schema:
            self.psql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE', check=False)
            self.schema = None

    def query(self, sql):
        """Rows of a query on the run's schema, as lists of strings."""
        out = self.psql(f'SET search_path TO "{self.schema}"; {sql}')
        return [line.split("\t") for line in out.stdout.splitlines() if line]


class LoadFailed(Exception):
    pass


def wrk(url, paths_file, connections, seconds, threads, pace_ms=0):
    env = dict(os.environ, PATHS_FILE=paths_file, PACE_MS=str(pace_ms))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
         "-s", os.path.join(HERE, "paths.lua"), url],
        env=env, capture_output=True, text=True, timeout=seconds + 60,
    )
    m = re.search(r"^RESULT (.*)$", out.stdout, re.M)
    if not m:
        raise LoadFailed(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def start_mailbeacon(binary, workdir, port, database, extra=(), label="mailbeacon"):
    errors = os.path.join(workdir, f"{label}.stderr")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--database", database, *extra],
        cwd=workdir, stdout=subprocess.PIPE, stderr=open(errors, "w"), text=True,
        env=dict(os.environ, MAILBEACON_LOG="warn"),
    )
    token = None
    deadline = time.time() + 60
    for line in proc.stdout:
        if "keep it safe): " in line:
            token = line.split("keep it safe): ")[1].strip()
        if line.startswith("listening on "):
            break
        if time.time() > deadline:
            break
    if token is None:
        proc.kill()
        proc.wait()
        with open(errors) as f:
            tail = "".join(f.readlines()[-20:])
        sys.exit(f"{label} did not start (or printed no admin token: is the database fresh?)\n{tail}")
    return proc, token


def catch_up(base, limit=300):
    """Seconds until /readyz says no answered event waits in the journal (polled every 10 ms)."""
    t0 = time.time()
    while time.time() - t0 < limit:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
        if "journal" not in body:
            return 0.0  # a build before the journal: its answers came after the commit
        if body["journal"]["pending_events"] == 0:
            return time.time() - t0
        time.sleep(0.01)
    raise LoadFailed(f"the journal was not stored within {limit} s")


def register(base, token, recipients):
    campaign = api(base, token, "POST", "/api/campaigns", {"name": "bench"})["id"]
    sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    opens, clicks = [], []
    for start in range(0, recipients, 10_000):
        batch = [{"recipient_id": f"r{i}", "html": EMAIL, "sent_at": sent_at}
                 for i in range(start, min(start + 10_000, recipients))]
        for m in api(base, token, "POST", f"/api/campaigns/{campaign}/messages", batch)["messages"]:
            opens.append(m["pixel_url"].removeprefix(base))
            click = re.search(r'href="([^"]*/c/[^"]*)"', m["html"]).group(1)
            clicks.append(click.removeprefix(base))
    return campaign, opens, clicks


def nginx_paths(recipients, click):
    """secure_link URLs as a sender using nginx would build them: md5 over expiry, URI, secret."""
    expires = int(time.time()) + 86400
    paths = []
    for i in range(recipients):
        uri = f"/c/{i}" if click else f"/o/{i}.gif"
        digest = hashlib.md5(f"{expires}{uri} {NGINX_SECRET}".encode()).digest()
        md5 = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        paths.append(f"{uri}?md5={md5}&expires={expires}")
    return paths


NGINX_CONF = """
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    log_format track '$msec $remote_addr "$request" $status "$http_user_agent"';
    server {{
        listen 127.0.0.1:{port} reuseport;
        location /o/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri {secret}";
            if ($secure_link = "") {{ return 404; }}
            if ($secure_link = "0") {{ return 404; }}
            access_log {dir}/access.log track buffer=64k flush=1s;
            add_header Cache-Control "no-store, no-cache, must-revalidate, private";
            expires epoch;
            empty_gif;
        }}
        location /c/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri {secret}";
            if ($secure_link = "") {{ return 404; }}
            if ($secure_link = "0") {{ return 404; }}
            access_log {dir}/access.log track buffer=64k flush=1s;
            return 302 https://shop.example.com/offer?x=1;
        }}
        # A webhook receiver that takes everything (bench/run --webhook).
        location /hook {{
            access_log off;
            return 204;
        }}
    }}
}}
"""


def start_nginx(workdir, port):
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=workdir, port=port, secret=NGINX_SECRET))
    subprocess.run(["nginx", "-p", workdir, "-c", conf], check=True)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return conf
        except OSError:
            time.sleep(0.05)
    sys.exit("nginx did not start")


def nginx_workers(workdir):
    with open(os.path.join(workdir, "nginx.pid")) as f:
        master = f.read().strip()
    out = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def stop_nginx(workdir, conf):
    subprocess.run(["nginx", "-p", workdir, "-c", conf, "-s", "quit"], check=False,
                   stderr=subprocess.DEVNULL)
    time.sleep(0.5)


def write_paths(workdir, name, paths):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write("\n".join(paths) + "\n")
    return path


def loads(args, pixels, clicks):
    """The loads each side gets, in order: (name, paths, pace in ms)."""
    out = [("pixel", pixels, 0), ("click", clicks, 0)]
    if args.pace_ms:
        out.append(("paced pixel", pixels, args.pace_ms))
    # One message's pixel (the last recipient's: it has had the loads above too).
    out += [(f"hot pixel {i + 1}", pixels[-1:], 0) for i in range(args.hot_rounds)]
    return out


def run_mailbeacon(args, workdir, backend, database, nport, store_rows):
    """Seeds a campaign, runs the loads (pixel, click, paced pixel), and returns the figures and what the
    database holds."""
    port = free_port()
    extra = (["--webhook-allow-private"] if args.webhook else []) + args.serve_args.split()
    proc, token = start_mailbeacon(args.binary, workdir, port, database, extra, label=f"mailbeacon-{backend}")
    results = {}
    try:
        base = f"http://127.0.0.1:{port}"
        t0 = time.time()
        _, opens, clicks = register(base, token, args.recipients)
        print(f"mailbeacon on {backend}: {args.recipients} recipients seeded in {time.time() - t0:.1f} s, "
              f"loading {', '.join(kind for kind, _, _ in loads(args, opens, clicks))}", file=sys.stderr, flush=True)
        if args.webhook:
            api(base, token, "POST", "/api/webhooks",
                {"url": f"http://127.0.0.1:{nport}/hook", "batch_size": 100, "rate_limit": 1000})
        peaks = [peak_rss_mb(proc.pid)]  # start-up and seeding
        # mailbeacon hands the memory of a bulk registration back half a second after answering
        # (src/memory.rs): let it, so each load's peak below is that load's own.
        time.sleep(1.0)
        per_phase = True
        for kind, paths, pace in loads(args, opens, clicks):
            f = write_paths(workdir, f"mb-{backend}-{kind.replace(' ', '-')}.txt", paths)
            per_phase = reset_peak_rss(proc.pid) and per_phase
            cpu0, pg0 = cpu_ticks([proc.pid], by_thread=True), cpu_ticks(postgres_pids())
            results[kind] = wrk(base + "/", f, args.connections, args.seconds, args.threads, pace)
            results[kind]["catch_up_s"] = catch_up(base)
            # Until every answered event is stored: the store worker's whole cost of the load.
            cpu = cpu_us_per_request(cpu0, cpu_ticks([proc.pid], by_thread=True), results[kind]["requests"])
            results[kind]["cpu_http"] = cpu.get("tokio-rt-worker", 0.0)
            results[kind]["cpu_store"] = cpu.get("mailbeacon-stor", 0.0)
            if backend == "postgres":
                results[kind]["cpu_store"] += cpu_us_per_request(
                    pg0, cpu_ticks(postgres_pids()), results[kind]["requests"]).get("all", 0.0)
            results[kind]["peak_mb"] = peak_rss_mb(proc.pid)
            peaks.append(results[kind]["peak_mb"])
        results["peak_mb"] = max(peaks)
        results["per_phase"] = per_phase
    finally:
        # Also when wrk fails: never leave a server behind.
        proc.terminate()
        proc.wait(timeout=60)
    results["stored"], results["notices"] = store_rows()
    return results


def sqlite_rows(db_path):
    with sqlite3.connect(db_path) as c:
        stored = dict(c.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        notices = dict(c.execute("SELECT state, count(*) FROM webhook_outbox GROUP BY state").fetchall())
        notices["delivered"] = c.execute(
            "SELECT coalesce(sum(delivered_total), 0) FROM webhook_endpoints").fetchone()[0]
    return stored, notices


def postgres_rows(pg):
    stored = {k: int(n) for k, n in pg.query("SELECT kind, count(*) FROM events GROUP BY kind")}
    notices = {k: int(n) for k, n in pg.query("SELECT state, count(*) FROM webhook_outbox GROUP BY state")}
    notices["delivered"] = int(pg.query(
        "SELECT coalesce(sum(delivered_total), 0) FROM webhook_endpoints")[0][0])
    return stored, notices


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "mailbeacon"))
    p.add_argument("--recipients", type=int, default=20_000)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", default="sqlite,postgres",
                   help="storage engines to run mailbeacon on, comma-separated (default: sqlite,postgres)")
    p.add_argument("--postgres", default=os.environ.get(
        "MAILBEACON_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"),
                   help="PostgreSQL server and database (a fresh schema is created in it and dropped "
                        "afterwards; default $MAILBEACON_BENCH_POSTGRES or postgres://postgres@127.0.0.1:5432/test)")
    p.add_argument("--pace-ms", type=int, default=10,
                   help="also a pixel load below saturation: each connection waits a random 0 to 2 x this "
                        "many ms before each request (default 10; 0 leaves it out)")
    p.add_argument("--serve-args", default="",
                   help="more flags for mailbeacon serve, as one string: --serve-args=--fsync")
    p.add_argument("--hot-rounds", type=int, default=4,
                   help="rounds of the hot-message load (every connection on one message's pixel; "
                        "default 4, 0 leaves it out)")
    p.add_argument("--webhook", action="store_true",
                   help="register a webhook for every open and click (batches of 100, to nginx)")
    args = p.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("sqlite", "postgres")]
    if not backends or unknown or len(set(backends)) != len(backends):
        p.error("--backends takes sqlite, postgres or both, comma-separated")

    pg = Postgres(args.postgres) if "postgres" in backends else None
    pg_version = pg.check_reachable() if pg else None

    workdir = tempfile.mkdtemp(prefix="mailbeacon-bench-")
    verdicts = []
    conf = None
    try:
        nport = free_port()
        # With --webhook, nginx takes mailbeacon's notices while mailbeacon is loaded.
        conf = start_nginx(workdir, nport) if args.webhook else None
        results = {}
        for backend in backends:
            if backend == "sqlite":
                db_path = os.path.join(workdir, "mb.db")
                results[backend] = run_mailbeacon(args, workdir, backend, f"sqlite://{db_path}", nport,
                                                  lambda: sqlite_rows(db_path))
            else:
                database = pg.create_schema()
                try:
                    results[backend] = run_mailbeacon(args, workdir, backend, database, nport,
                                                      lambda: postgres_rows(pg))
                finally:
                    pg.drop_schema()

        # nginx as the classic tracker.
        conf = conf or start_nginx(workdir, nport)
        nresults = {}
        try:
            for kind, paths, pace in loads(args, nginx_paths(args.recipients, False),
                                           nginx_paths(args.recipients, True)):
                f = write_paths(workdir, f"nginx-{kind.replace(' ', '-')}.txt", paths)
                workers = nginx_workers(workdir)
                cpu0 = cpu_ticks(workers)
                nresults[kind] = wrk(f"http://127.0.0.1:{nport}/", f, args.connections, args.seconds,
                                     args.threads, pace)
                nresults[kind]["cpu_http"] = cpu_us_per_request(
                    cpu0, cpu_ticks(workers), nresults[kind]["requests"]).get("all", 0.0)
        finally:
            stop_nginx(workdir, conf)
            conf = None

        print(f"\nload: wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, "
              f"{args.recipients} distinct recipients, 127.0.0.1, {os.cpu_count()} cores shared by client and servers"
              f"{' and PostgreSQL' if pg else ''}")
        if pg_version:
            print(f"postgres: {pg_version}, {args.postgres}, fresh schema")
        if args.serve_args:
            print(f"mailbeacon serve {args.serve_args}")
        print("peak MB: mailbeacon's VmHWM during that load"
              + ("" if all(r["per_phase"] for r in results.values()) else
                 " (could not reset it between loads: peaks since start-up)"))
        print("catch-up s: from the end of the load until every answered event is in the database "
              "and its reports")
        print("cpu us/req: CPU time per answered request, from the start of the load to the end of its catch-up, of the threads that answer "
              "(nginx's workers, mailbeacon's HTTP workers) + of storing (mailbeacon's store worker, "
              "and on PostgreSQL every postgres process)")
        print(f"{'':34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'peak MB':>9}{'x nginx':>9}{'non-2xx/3xx':>13}"
              f"{'catch-up s':>12}{'cpu us/req':>14}")

        def bad(r, ok_status):
            return sum(n for code, n in r["statuses"].items() if code != ok_status) + r["errors"]

        status = {kind: ("302" if kind == "click" else "200") for kind in nresults}
        for kind in nresults:
            if kind == "paced pixel":
                print(f"paced: each connection waits 0-{2 * args.pace_ms} ms (random) before each request")
            if kind == "hot pixel 1":
                print("hot: every connection on one message's pixel, rounds in a row; 'x fresh' compares "
                      "each round with the same server's fresh-recipient pixel load")
            n = nresults[kind]
            print(f"{'nginx ' + kind:34}{n['rps']:>9.0f}{n['p50_us'] / 1000:>9.2f}{n['p99_us'] / 1000:>9.2f}"
                  f"{'-':>9}{'1.00':>9}{bad(n, status[kind]):>13}{'-':>12}{n['cpu_http']:>8.1f}")
            for backend in backends:
                r = results[backend][kind]
                fresh = (f"  x fresh {r['rps'] / results[backend]['pixel']['rps']:.2f}"
                         if kind.startswith("hot") else "")
                print(f"{'mailbeacon ' + backend + ' ' + kind:34}{r['rps']:>9.0f}{r['p50_us'] / 1000:>9.2f}"
                      f"{r['p99_us'] / 1000:>9.2f}{r['peak_mb']:>9.1f}{r['rps'] / n['rps']:>9.2f}"
                      f"{bad(r, status[kind]):>13}{r['catch_up_s']:>12.2f}"
                      f"{r['cpu_http']:>8.1f} + {r['cpu_store']:.1f}{fresh}")
        # Every request answered 200 (pixel loads) or 302 (clicks) must be a row in the database.
        for table, ok_status in (("open", "200"), ("click", "302")):
            phases = [k for k in nresults if status[k] == ok_status]
            for backend in backends:
                answered = sum(results[backend][k]["statuses"].get(ok_status, 0) for k in phases)
                rows_stored = results[backend]["stored"].get(table, 0)
                verdict = "ok" if rows_stored >= answered else "MISSING ROWS"
                print(f"  {backend}: answered {ok_status} ({', '.join(phases)}): {answered}, "
                      f"{table} rows in the database: {rows_stored} ({verdict})")
                verdicts.append(verdict)
        print("mailbeacon peak memory over the whole run, seeding included (VmHWM): "
              + ", ".join(f"{b} {results[b]['peak_mb']:.1f} MB" for b in backends))
        if args.webhook:
            for backend in backends:
                notices = results[backend]["notices"]
                print(f"webhook notices at the end of the {backend} run: delivered {notices.get('delivered', 0)}, "
                      f"pending {notices.get('pending', 0)}, dead {notices.get('dead', 0)}")
        print("reproduce: bench/run " + " ".join(sys.argv[1:]))
    finally:
        if conf:
            stop_nginx(workdir, conf)
        if pg:
            pg.drop_schema()
        shutil.rmtree(workdir, ignore_errors=True)
    if "MISSING ROWS" in verdicts:
        sys.exit(1)


if __name__ == "__main__":
    main()
