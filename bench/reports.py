#!/usr/bin/env python3
"""Reports and exports on a big campaign: report latency, export throughput and memory.

Run with `bench/reports` (builds the release binary and examples/bench_seed.rs first). Steps:

1. seed a fresh SQLite database (in /tmp, outside the repository) with one campaign of --events
   events through the library's own write path (`SqliteStore::record_events` in batches: every
   event classified and rolled up as the server's writer does it), and time it;
2. start `mailbeacon serve` on it (127.0.0.1 only) and time the report routes and the dashboard's
   pages, --runs requests each on one keep-alive connection (every run counted, the first too);
3. stream the whole CSV export to /dev/null with curl: wall time, events/s, and the server's peak
   memory (VmHWM) before and after, plus its largest VmRSS sampled during the export;
4. stop the server and run `mailbeacon export` to /dev/null under /usr/bin/time -v.

The database is deleted at the end unless --keep; --database reuses a kept one (no seeding).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET_MS = 50


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, field):
    """A /proc/PID/status memory field in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def seed(seeder, db, events):
    print(f"seeding {events:,} events into {db}", flush=True)
    started = time.time()
    proc = subprocess.Popen([seeder, "--database", db, "--events", str(events)],
                            stdout=subprocess.PIPE, text=True)
    last = ""
    for line in proc.stdout:
        print("  " + line.rstrip(), flush=True)
        last = line.strip()
    if proc.wait() != 0:
        sys.exit("seeding failed")
    return time.time() - started, last


def start_server(binary, workdir, db_url):
    port = free_port()
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--database", db_url],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=dict(os.environ, MAILBEACON_LOG="warn"),
    )
    deadline = time.time() + 120
    for line in proc.stdout:
        if line.startswith("listening on "):
            break
        if time.time() > deadline:
            break
    else:
        sys.exit("mailbeacon did not start")
    # Keep reading its stdout so that it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, port


def timed(port, path, headers, runs):
    """Times `runs` GETs on one keep-alive connection; returns (median ms, max ms, bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times, size = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            sys.exit(f"GET {path}: {r.status} {body[:200]!r}")
        size = len(body)
    conn.close()
    return statistics.median(times), max(times), size


def get_json(port, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    if r.status != 200:
        sys.exit(f"GET {path}: {r.status} {body[:200]!r}")
    return json.loads(body)


def dashboard_cookie(port, token):
    """Signs in to the dashboard with the API token; None when there is no dashboard."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/login", body=urllib.parse.urlencode({"secret": token, "next": "/"}),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    conn.close()
    if r.status == 404:
        return None
    cookie = r.getheader("Set-Cookie")
    if not cookie:
        sys.exit(f"dashboard sign-in answered {r.status} without a cookie")
    return cookie.split(";")[0]


def export_over_http(port, pid, token, campaign):
    """Streams the CSV export to /dev/null with curl while sampling the server's memory."""
    stop = threading.Event()
    samples = []

    def sample():
        while not stop.is_set():
            samples.append(proc_status(pid, "VmRSS"))
            time.sleep(0.1)

    hwm_before = proc_status(pid, "VmHWM")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.time()
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
         "-w", "%{http_code} %{size_download} %{time_starttransfer}",
         f"http://127.0.0.1:{port}/api/campaigns/{campaign}/events/export?format=csv"],
        capture_output=True, text=True,
    )
    wall = time.time() - started
    stop.set()
    sampler.join()
    if out.returncode != 0:
        sys.exit(f"curl failed ({out.returncode}): {out.stderr}")
    status, size, first_byte = out.stdout.split()
    if status != "200":
        sys.exit(f"export answered {status}")
    return {
        "wall": wall, "bytes": int(size), "first_byte_ms": float(first_byte) * 1000,
        "hwm_before": hwm_before, "hwm_after": proc_status(pid, "VmHWM"),
        "rss_max": max(samples) if samples else float("nan"),
    }


def export_cli(binary, db_url, campaign):
    out = subprocess.run(
        ["/usr/bin/time", "-v", binary, "export", "--campaign", str(campaign),
         "--database", db_url, "--output", "/dev/null"],
        capture_output=True, text=True, env=dict(os.environ, MAILBEACON_LOG="warn"),
    )
    if out.returncode != 0:
        sys.exit(f"mailbeacon export failed:\n{out.stderr}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", out.stderr)
    done = re.search(r"exported (\d+) events", out.stderr)
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return {"rss_mb": int(rss.group(1)) / 1024, "wall": seconds, "events": int(done.group(1))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    p.add_argument("--binary", default=os.path.join(target, "release", "mailbeacon"))
    p.add_argument("--seeder", default=os.path.join(target, "release", "examples", "bench_seed"))
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--dir", default="/tmp", help="where the fresh database goes (default /tmp)")
    p.add_argument("--database", help="a database kept by an earlier --keep run: no seeding")
    p.add_argument("--keep", action="store_true", help="keep the seeded database")
    args = p.parse_args()

    workdir = tempfile.mkdtemp(prefix="mailbeacon-reports-", dir=args.dir)
    db = args.database or os.path.join(workdir, "mb.db")
    db_url = f"sqlite://{db}"
    seeded = None
    proc = None
    try:
        if not args.database:
            seeded = seed(args.seeder, db, args.events)
        size_mb = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s)) / 1e6
        token = subprocess.run([args.binary, "token", "create", "--scope", "admin",
                                "--database", db_url], capture_output=True, text=True,
                               check=True).stdout.strip()
        proc, port = start_server(args.binary, workdir, db_url)
        auth = {"Authorization": f"Bearer {token}"}
        campaign = get_json(port, "/api/campaigns", auth)["campaigns"][-1]["id"]
        report = get_json(port, f"/api/campaigns/{campaign}/report", auth)
        events = report["opens"]["total"] + report["clicks"]["total"]

        rows = []
        for name, path in (
            ("report", f"/api/campaigns/{campaign}/report"),
            ("timeseries", f"/api/campaigns/{campaign}/timeseries"),
            ("timeseries?interval=hour", f"/api/campaigns/{campaign}/timeseries?interval=hour"),
            ("breakdown/client", f"/api/campaigns/{campaign}/breakdown/client"),
            ("links", f"/api/campaigns/{campaign}/links"),
        ):
            rows.append((f"GET {name}", *timed(port, path, auth, args.runs), True))
        cookie = dashboard_cookie(port, token)
        if cookie:
            for name, path in (("/ (dashboard)", "/"), (f"/campaigns/{campaign} (dashboard)",
                                                         f"/campaigns/{campaign}")):
                rows.append((f"GET {name}", *timed(port, path, {"Cookie": cookie}, args.runs),
                             False))

        http_export = export_over_http(port, proc.pid, token, campaign)
        proc.terminate()
        proc.wait(timeout=60)
        proc = None
        cli = export_cli(args.binary, db_url, campaign)

        print()
        print(f"database: {events:,} events in campaign {campaign}, {size_mb:,.0f} MB "
              f"(SQLite, {os.cpu_count()} cores)")
        if seeded:
            print(f"seeding: {seeded[0]:.0f} s wall ({seeded[1]})")
        print(f"\n{'':36}{'median ms':>10}{'max ms':>9}{'bytes':>10}")
        missed = []
        for name, median, worst, size, is_report in rows:
            print(f"{name:36}{median:>10.1f}{worst:>9.1f}{size:>10,}")
            if is_report and median >= TARGET_MS:
                missed.append(name)
        if not cookie:
            print("GET / (dashboard): skipped, the server has no dashboard (404)")
        print(f"({args.runs} runs each on one keep-alive connection, all counted)")
        e = http_export
        print(f"\nexport over HTTP (CSV to /dev/null with curl): {e['wall']:.1f} s, "
              f"{events / e['wall']:,.0f} events/s, {e['bytes'] / 1e6:,.0f} MB "
              f"({e['bytes'] / 1e6 / e['wall']:.0f} MB/s), first byte after {e['first_byte_ms']:.0f} ms")
        print(f"  server memory: peak (VmHWM) {e['hwm_before']:.1f} MB before the export, "
              f"{e['hwm_after']:.1f} MB after; largest VmRSS during it {e['rss_max']:.1f} MB")
        print(f"export from the CLI (mailbeacon export --output /dev/null): {cli['wall']:.1f} s, "
              f"{cli['events'] / cli['wall']:,.0f} events/s, peak memory (max RSS) "
              f"{cli['rss_mb']:.1f} MB; {cli['events']:,} events "
              f"({'all' if cli['events'] == events else 'MISSING SOME'})")
        if missed:
            print(f"target (reports under {TARGET_MS} ms): NOT MET by {', '.join(missed)}")
        else:
            print(f"target (reports under {TARGET_MS} ms): met")
        print("reproduce: bench/reports " + " ".join(sys.argv[1:]))
        if args.keep and not args.database:
            print(f"kept: {db} (bench/reports --database {db})")
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        # A reused database is not in workdir; a kept one is.
        if args.database or not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
