#!/usr/bin/env python3
"""Load benchmark: mailbeacon against nginx as the classic tracking pixel, same client, same load.

Run with `bench/run` (installs nginx and wrk from Debian's packages when missing, builds the
release binary). Everything listens on 127.0.0.1 only and every load run stops by itself.

For each side it loads many distinct recipients' URLs (not one URL repeated) with wrk at the same
concurrency and prints requests per second, p50/p99 latency, mailbeacon's peak memory, and the
ratio mailbeacon/nginx. Afterwards it checks that every request mailbeacon answered 200 or 302 is
a row in its database.
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


class LoadFailed(Exception):
    pass


def wrk(url, paths_file, connections, seconds, threads):
    env = dict(os.environ, PATHS_FILE=paths_file)
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


def start_mailbeacon(binary, workdir, port, database, extra=()):
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--database", database, *extra],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
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
        sys.exit("mailbeacon did not start (or printed no admin token: is the database fresh?)")
    return proc, token


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


def stop_nginx(workdir, conf):
    subprocess.run(["nginx", "-p", workdir, "-c", conf, "-s", "quit"], check=False,
                   stderr=subprocess.DEVNULL)
    time.sleep(0.5)


def write_paths(workdir, name, paths):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write("\n".join(paths) + "\n")
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "mailbeacon"))
    p.add_argument("--recipients", type=int, default=20_000)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--webhook", action="store_true",
                   help="register a webhook for every open and click (batches of 100, to nginx)")
    args = p.parse_args()

    workdir = tempfile.mkdtemp(prefix="mailbeacon-bench-")
    rows = []
    conf = None
    try:
        # mailbeacon, SQLite, fresh database.
        port = free_port()
        db_path = os.path.join(workdir, "mb.db")
        nport = free_port()
        conf = start_nginx(workdir, nport) if args.webhook else None
        extra = ["--webhook-allow-private"] if args.webhook else []
        proc, token = start_mailbeacon(args.binary, workdir, port, f"sqlite://{db_path}", extra)
        try:
            base = f"http://127.0.0.1:{port}"
            campaign, opens, clicks = register(base, token, args.recipients)
            if args.webhook:
                api(base, token, "POST", "/api/webhooks",
                    {"url": f"http://127.0.0.1:{nport}/hook", "batch_size": 100, "rate_limit": 1000})
            results = {}
            for kind, paths in (("pixel", opens), ("click", clicks)):
                f = write_paths(workdir, f"mb-{kind}.txt", paths)
                results[kind] = wrk(base + "/", f, args.connections, args.seconds, args.threads)
            results["peak_mb"] = peak_rss_mb(proc.pid)
        finally:
            # Also when wrk fails: never leave a server behind.
            proc.terminate()
            proc.wait(timeout=60)
        with sqlite3.connect(db_path) as c:
            stored = dict(c.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
            notices = dict(c.execute("SELECT state, count(*) FROM webhook_outbox GROUP BY state").fetchall())
            notices["delivered"] = c.execute(
                "SELECT coalesce(sum(delivered_total), 0) FROM webhook_endpoints").fetchone()[0]

        # nginx as the classic tracker.
        conf = conf or start_nginx(workdir, nport)
        nresults = {}
        try:
            for kind in ("pixel", "click"):
                f = write_paths(workdir, f"nginx-{kind}.txt", nginx_paths(args.recipients, kind == "click"))
                nresults[kind] = wrk(f"http://127.0.0.1:{nport}/", f, args.connections, args.seconds, args.threads)
        finally:
            stop_nginx(workdir, conf)

        print(f"\nload: wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, "
              f"{args.recipients} distinct recipients, 127.0.0.1, {os.cpu_count()} cores shared by client and server")
        print(f"{'':28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx/3xx':>13}")
        for kind, ok_status, table in (("pixel", "200", "open"), ("click", "302", "click")):
            for name, r in ((f"mailbeacon sqlite {kind}", results[kind]), (f"nginx {kind}", nresults[kind])):
                bad = sum(n for code, n in r["statuses"].items() if code != ok_status) + r["errors"]
                print(f"{name:28}{r['rps']:>10.0f}{r['p50_us'] / 1000:>9.2f}{r['p99_us'] / 1000:>9.2f}{bad:>13}")
            ratio = results[kind]["rps"] / nresults[kind]["rps"]
            answered = results[kind]["statuses"].get(ok_status, 0)
            rows_stored = stored.get(table, 0)
            verdict = "ok" if rows_stored >= answered else "MISSING ROWS"
            print(f"  ratio mailbeacon/nginx: {ratio:.2f}x; answered {ok_status}: {answered}, "
                  f"rows in the database: {rows_stored} ({verdict})")
            rows.append(verdict)
        print(f"mailbeacon peak memory (VmHWM): {results['peak_mb']:.1f} MB")
        if args.webhook:
            print(f"webhook notices at the end of the run: delivered {notices.get('delivered', 0)}, "
                  f"pending {notices.get('pending', 0)}, dead {notices.get('dead', 0)}")
        print("reproduce: bench/run " + " ".join(sys.argv[1:]))
    finally:
        if conf:
            stop_nginx(workdir, conf)
        shutil.rmtree(workdir, ignore_errors=True)
    if "MISSING ROWS" in rows:
        sys.exit(1)


if __name__ == "__main__":
    main()
