#!/usr/bin/env python3
"""Job-path benchmarks: scrapyd-rs against stock Scrapyd 1.6, side by side on this machine.

Not run by `cargo test`. Run it from the repository root after `cargo build --release --examples`
(the daemon and the compiled client) and `cargo test` (which provisions target/stock-venv with
stock Scrapyd and target/test-venv with Scrapy, and builds the demo egg into target/test-eggs):

    python3 tests/bench/jobs.py [--quick]

What it measures, for both daemons, with the same requests, the same egg and the same settings:

1. schedule -> exec latency: the time from the schedule.json answer until the crawl's process
   is running. Both daemons run a stamping runner module (`runner = bench_runner`) that writes
   time.time() as its first statement, so both figures include Python's start-up equally. For
   scrapyd-rs we also measure the moment of exec itself, through a `python` wrapper that stamps
   the time and then execs the interpreter (stock has no `python` option: it uses its own).
2. schedule.json throughput: sequential requests from one client on one keep-alive connection,
   each acknowledged only once durable (stock: one SQLite commit; ours: one journal record).
   Three times, since a sequential client's own time per request is part of the figure and pulls
   the ratio toward 1: with Python's http.client; with a lean Python client of raw prepared
   requests (http.client sends the headers and the body in two writes, two wake-ups of the
   server, and parses the answer line by line; measured here: a schedule.json that scrapyd-rs
   refuses, so no disk is involved, took 144 us with http.client and 85 us with the lean client
   on 2026-12-06, and 187 us and 114-120 us on 2026-12-07); and with tests/bench/schedule_load.rs, a compiled client that spends next to
   nothing per request, as load generators such as ab and wrk do. Also counted, from
   /proc/diskstats during the compiled client's run: the device writes and cache flushes per
   schedule. They do not depend on the machine's speed: where each write or flush takes longer,
   stock waits for all of its own per job, scrapyd-rs for one write and one flush.
3. A large state (2,000 pending and 100,000 finished jobs): status.json, daemonstatus.json (also
   while another process asks for listjobs.json of everything over and over) and listjobs.json.
   On 2 CPUs the slowest daemonstatus.json of that second run is mostly the kernel's scheduling:
   three busy processes (that client, the daemon writing the JSON, this script) share two
   processors, and whichever waits for a time slice waits milliseconds; look at the median too.

Figures are printed as medians with the stock/ours ratio. Nothing here is asserted.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
OURS = os.path.join(TARGET, "release", "scrapyd-rs")
STOCK = os.path.join(TARGET, "stock-venv", "bin", "scrapyd")
STOCK_PYTHON = os.path.join(TARGET, "stock-venv", "bin", "python")
TEST_PYTHON = os.path.join(TARGET, "test-venv", "bin", "python")
SCHEDULE_LOAD = os.path.join(TARGET, "release", "examples", "schedule_load")

#: A runner module that records when it started, then idles until told to stop (or exits at once
#: with BENCH_EXIT=1). It answers `list` with the one spider the benchmark schedules, since both
#: daemons also run the configured runner to list spiders. It is put on PYTHONPATH for both.
BENCH_RUNNER = '''
import os, sys, time
started = time.time()
if sys.argv[1:2] == ["list"]:
    print("args")  # the one spider the benchmark schedules
    sys.exit(0)
job = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("_job=")), "unknown")
stamps = os.environ["BENCH_STAMPS"]
with open(os.path.join(stamps, job + ".start"), "w") as f:
    f.write(repr(started))
if os.environ.get("BENCH_EXIT") != "1":
    time.sleep(3600)
'''

#: A `python` wrapper for scrapyd-rs that stamps the moment it is exec'd (bash's builtin clock,
#: no fork), then execs the real interpreter.
EXEC_STAMP = '''#!/bin/bash
for arg in "$@"; do case "$arg" in _job=*) job="${arg#_job=}";; esac; done
[ -n "$job" ] && printf '%s' "$EPOCHREALTIME" > "$BENCH_STAMPS/$job.exec"
exec "$REAL_PYTHON" "$@"
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method, path, fields=None):
        body = urllib.parse.urlencode(fields).encode() if fields else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, data

    def json(self, method, path, fields=None):
        status, data = self.request(method, path, fields)
        return json.loads(data)


class LeanClient:
    """One keep-alive connection that sends prepared bytes and reads exactly one response: about
    a quarter of http.client's cost per request, so the daemons' own difference shows."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def post(self, path, fields):
        body = urllib.parse.urlencode(fields).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.sock.sendall(head + body)
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                headers = self.buffer[:end].lower()
                length = int(headers.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                total = end + 4 + length
                if len(self.buffer) >= total:
                    status = int(headers.split(b" ", 2)[1])
                    data, self.buffer = self.buffer[end + 4:total], self.buffer[total:]
                    return status, data
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the daemon closed the connection")
            self.buffer += chunk


class Daemon:
    """A daemon (ours or stock) in a directory of its own."""

    def __init__(self, name, workdir, extra_conf, env):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.port = free_port()
        conf = f"[scrapyd]\nbind_address = 127.0.0.1\nhttp_port = {self.port}\nnode_name = bench\n{extra_conf}"
        with open(os.path.join(self.dir, "scrapyd.conf"), "w") as f:
            f.write(conf)
        self.env = env
        self.process = None

    def start(self):
        command = [OURS] if self.name == "ours" else [STOCK, "--pidfile="]
        self.log = open(os.path.join(self.dir, "daemon.log"), "ab")
        self.process = subprocess.Popen(command, cwd=self.dir, env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                Client(self.port).request("GET", "/daemonstatus.json")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start; see {self.dir}/daemon.log")

    def stop(self):
        if self.process:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


def kill_runners(stamps):
    """Stops every idling bench runner started for this benchmark."""
    out = subprocess.run(["pgrep", "-f", "bench_runner"], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if stamps.encode() in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def median_ms(values):
    return statistics.median(values) * 1000


def report(title, stock, ours, unit="ms", higher_is_better=False):
    ratio = (ours / stock) if higher_is_better else (stock / ours)
    print(f"  {title:<58} stock {stock:10.3f} {unit}   ours {ours:10.3f} {unit}   {ratio:7.1f}x")


def demo_egg():
    eggs = sorted(p for p in os.listdir(os.path.join(TARGET, "test-eggs")) if p.startswith("demo-") and p.endswith(".egg"))
    if not eggs:
        sys.exit("no demo egg in target/test-eggs: run `cargo test` once first")
    return os.path.join(TARGET, "test-eggs", eggs[0])


def deploy(daemon, egg):
    with open(egg, "rb") as f:
        data = f.read()
    client = Client(daemon.port)
    boundary = "benchboundary"
    parts = []
    for name, value in (("project", b"demo"), ("version", b"1")):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="egg"; filename="demo.egg"\r\n\r\n'.encode() + data + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    client.conn.request("POST", "/addversion.json", body=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    answer = json.loads(client.conn.getresponse().read())
    assert answer["status"] == "ok", answer


def wait_for(path, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text:
                return float(text)
        except OSError:
            pass
        time.sleep(0.0005)
    raise TimeoutError(path)


def bench_latency(workdir, egg, samples):
    print(f"\n1. schedule.json answer -> crawl process running ({samples} jobs each, free slot, median)")
    stamps = os.path.join(workdir, "stamps")
    os.makedirs(stamps)
    runner_dir = os.path.join(workdir, "runner")
    os.makedirs(runner_dir)
    with open(os.path.join(runner_dir, "bench_runner.py"), "w") as f:
        f.write(BENCH_RUNNER)
    wrapper = os.path.join(runner_dir, "python-stamp")
    with open(wrapper, "w") as f:
        f.write(EXEC_STAMP)
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, PYTHONPATH=runner_dir, BENCH_STAMPS=stamps, BENCH_EXIT="1", REAL_PYTHON=TEST_PYTHON)
    results = {}
    for name, conf in (
        ("stock", "runner = bench_runner\npoll_interval = 5.0\n"),
        ("ours", f"runner = bench_runner\npython = {wrapper}\n"),
    ):
        daemon = Daemon(name, workdir, conf, env)
        daemon.start()
        try:
            deploy(daemon, egg)
            client = Client(daemon.port)
            module, execs = [], []
            for i in range(samples):
                job = f"{name}-lat-{i}"
                answer = client.json("POST", "/schedule.json", {"project": "demo", "spider": "args", "jobid": job})
                answered = time.time()
                assert answer["status"] == "ok", answer
                module.append(wait_for(os.path.join(stamps, job + ".start")) - answered)
                if name == "ours":
                    execs.append(wait_for(os.path.join(stamps, job + ".exec")) - answered)
            results[name] = (module, execs)
        finally:
            daemon.stop()
            kill_runners(stamps)
    report("runner module started (includes Python start-up)", median_ms(results["stock"][0]), median_ms(results["ours"][0]))
    print(f"  {'scrapyd-rs: exec of the runner process (median / max)':<58} "
          f"{median_ms(results['ours'][1]):.3f} ms / {max(results['ours'][1]) * 1000:.3f} ms")


def bench_throughput(workdir, egg, count, daemons):
    """Starts both daemons into `daemons` (name -> Daemon), where the caller stops them even when a
    step here fails, and prints their schedule.json throughput."""
    print(f"\n2. schedule.json sequential throughput ({count} requests, a third from each client, one keep-alive "
          "connection each, slots busy)")
    total, count = count, count // 3
    stamps = os.path.join(workdir, "stamps2")
    os.makedirs(stamps)
    runner_dir = os.path.join(workdir, "runner")
    env = dict(os.environ, PYTHONPATH=runner_dir, BENCH_STAMPS=stamps, BENCH_EXIT="0")
    rates, lean_rates, compiled_rates, disk_ops = {}, {}, {}, {}
    for name in ("stock", "ours"):
        daemon = Daemon(name + "-big", workdir, "runner = bench_runner\nmax_proc = 1\nfinished_to_keep = 200000\n"
                        + ("jobstorage = scrapyd.jobstorage.SqliteJobStorage\n" if name == "stock" else ""), env)
        daemon.name = name
        daemons[name] = daemon  # before start(), which may raise with the process already running
        daemon.start()
        deploy(daemon, egg)
        client = Client(daemon.port)
        answer = client.json("POST", "/schedule.json", {"project": "demo", "spider": "args", "jobid": "occupy"})
        assert answer["status"] == "ok", answer
        wait_for(os.path.join(stamps, "occupy.start"))
        started = time.perf_counter()
        for i in range(count):
            status, data = client.request("POST", "/schedule.json", {"project": "demo", "spider": "args", "jobid": f"p{i}"})
            assert status == 200 and b'"ok"' in data, data
        rates[name] = count / (time.perf_counter() - started)
        lean = LeanClient(daemon.port)
        started = time.perf_counter()
        for i in range(count):
            status, data = lean.post("/schedule.json", {"project": "demo", "spider": "args", "jobid": f"q{i}"})
            assert status == 200 and b'"ok"' in data, data
        lean_rates[name] = count / (time.perf_counter() - started)
        disk_before = device_counters(daemon.dir)
        compiled_rates[name] = compiled_schedules(daemon.port, total - 2 * count, "project=demo&spider=args&jobid=c")
        disk_ops[name] = [(after - before) / (total - 2 * count)
                          for before, after in zip(disk_before, device_counters(daemon.dir))]
    report("requests per second (http.client)", rates["stock"], rates["ours"], unit="/s", higher_is_better=True)
    report("requests per second (lean client)", lean_rates["stock"], lean_rates["ours"], unit="/s",
           higher_is_better=True)
    report("requests per second (compiled client)", compiled_rates["stock"], compiled_rates["ours"], unit="/s",
           higher_is_better=True)
    if disk_ops["stock"] and disk_ops["ours"]:
        print("  device writes + cache flushes per schedule (whole disk, compiled client's run):   "
              + "   ".join(f"{name} {writes:.2f} + {flushes:.2f}" for name, (writes, flushes) in disk_ops.items()))


def device_counters(path):
    """The writes and flushes completed so far by the disk holding `path`, from /proc/diskstats
    (empty where it is not listed there, as for tmpfs or an overlay). A partition's line counts
    its own writes but no flushes, which the kernel counts on the whole disk only, so the whole
    disk's line is read."""
    device = os.stat(path).st_dev
    sysfs = f"/sys/dev/block/{os.major(device)}:{os.minor(device)}"
    if os.path.exists(os.path.join(sysfs, "partition")):
        try:
            with open(os.path.join(sysfs, "..", "dev")) as f:
                device = os.makedev(*map(int, f.read().split(":")))
        except (OSError, ValueError):
            return []
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                fields = line.split()
                if (int(fields[0]), int(fields[1])) == (os.major(device), os.minor(device)) and len(fields) >= 20:
                    return [int(fields[7]), int(fields[18])]
    except OSError:
        pass
    return []


def compiled_schedules(port, count, body_prefix):
    """`count` sequential schedules from tests/bench/schedule_load.rs; returns the rate per second."""
    answer = subprocess.run([SCHEDULE_LOAD, str(port), str(count), body_prefix], capture_output=True, text=True)
    if answer.returncode != 0:
        raise RuntimeError(f"schedule_load failed: {answer.stderr.strip()}")
    return float(answer.stdout)


def fill_finished(daemons, count):
    """Gives both daemons `count` finished jobs, written as each stores them, then restarts them."""
    now = time.time()
    rows = []
    for i in range(count):
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - 100000 + i)) + ".000001"
        end = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - 100000 + i + 1)) + ".500000"
        rows.append((f"f{i}", start, end))
    stock, ours = daemons["stock"], daemons["ours"]
    for daemon in (stock, ours):
        daemon.stop()
    os.makedirs(os.path.join(stock.dir, "dbs"), exist_ok=True)
    db = sqlite3.connect(os.path.join(stock.dir, "dbs", "jobs.db"))
    db.execute("CREATE TABLE IF NOT EXISTS finished_jobs (id integer PRIMARY KEY, project text, spider text, "
               "job text, start_time datetime, end_time datetime)")
    db.executemany("INSERT INTO finished_jobs (project, spider, job, start_time, end_time) VALUES ('demo', 'args', ?, ?, ?)", rows)
    db.commit()
    db.close()
    with open(os.path.join(ours.dir, "spool", ".scrapyd-rs", "finished.jl"), "a") as f:
        for job, start, end in rows:
            f.write(json.dumps({"id": job, "project": "demo", "spider": "args", "version": None, "start_time": start,
                                "end_time": end, "outcome": "finished", "exit_code": 0, "signal": None, "node": "bench",
                                "pid": 1}) + "\n")
    for daemon in (stock, ours):
        daemon.start()


#: Asks for listjobs.json of everything over and over (run as its own process).
LISTJOBS_LOOP = '''
import http.client, sys
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=120)
while True:
    connection.request("GET", "/listjobs.json")
    connection.getresponse().read()
'''


def timed(client, path, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        status, data = client.request("GET", path)
        times.append(time.perf_counter() - started)
        assert status == 200, data[:200]
    return statistics.median(times), len(data)


def bench_large_state(daemons, finished, repeat):
    print(f"\n3. with 2,000 pending and {finished:,} finished jobs (median of {repeat})")
    results = {}
    for name, daemon in daemons.items():
        client = Client(daemon.port)
        counts = client.json("GET", "/daemonstatus.json")
        status_known, _ = timed(client, "/status.json?job=p1000", repeat)
        status_unknown, _ = timed(client, "/status.json?job=nope", repeat)
        daemonstatus, _ = timed(client, "/daemonstatus.json", repeat)
        listjobs, size = timed(client, "/listjobs.json", max(3, repeat // 10))
        # daemonstatus.json while listjobs.json of everything is being served, over and over, by
        # another process: a thread of this one would hold the interpreter's lock for
        # milliseconds while it joins a 34 MB answer, and those waits would be counted here.
        during = []
        hammer = subprocess.Popen([sys.executable, "-c", LISTJOBS_LOOP, str(daemon.port)])
        try:
            time.sleep(0.5)
            for _ in range(repeat):
                started = time.perf_counter()
                client.request("GET", "/daemonstatus.json")
                during.append(time.perf_counter() - started)
        finally:
            hammer.kill()
            hammer.wait()
        results[name] = dict(counts=counts, status_known=status_known, status_unknown=status_unknown,
                             daemonstatus=daemonstatus, during=statistics.median(during), during_max=max(during),
                             listjobs=listjobs, size=size)
    for name in results:
        c = results[name]["counts"]
        print(f"  {name}: pending {c['pending']}, running {c['running']}, finished {c['finished']}, "
              f"listjobs {results[name]['size'] / 1e6:.1f} MB")
    s, o = results["stock"], results["ours"]
    report("status.json (a pending job)", s["status_known"] * 1000, o["status_known"] * 1000)
    report("status.json (an unknown job)", s["status_unknown"] * 1000, o["status_unknown"] * 1000)
    report("daemonstatus.json", s["daemonstatus"] * 1000, o["daemonstatus"] * 1000)
    report("daemonstatus.json while listjobs.json is served (median)", s["during"] * 1000, o["during"] * 1000)
    report("daemonstatus.json while listjobs.json is served (max)", s["during_max"] * 1000, o["during_max"] * 1000)
    report("listjobs.json (everything)", s["listjobs"] * 1000, o["listjobs"] * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples, 10,000 finished jobs")
    parser.add_argument("--throughput-only", type=int, metavar="ROUNDS",
                        help="only the schedule.json throughput, ROUNDS times (stock and ours side by side each time)")
    args = parser.parse_args()
    for path in (OURS, STOCK, TEST_PYTHON, SCHEDULE_LOAD):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run `cargo build --release --examples` and `cargo test` first")
    egg = demo_egg()
    workdir = tempfile.mkdtemp(prefix="scrapyd-bench-")
    print(f"scrapyd-rs vs stock Scrapyd 1.6.0 on {os.cpu_count()} CPUs; work directory {workdir}")
    daemons = {}
    if args.throughput_only:
        try:
            for round_number in range(args.throughput_only):
                round_dir = os.path.join(workdir, f"round{round_number}")
                os.makedirs(os.path.join(round_dir, "runner"))
                with open(os.path.join(round_dir, "runner", "bench_runner.py"), "w") as f:
                    f.write(BENCH_RUNNER)
                bench_throughput(round_dir, egg, 4000, daemons)
                for daemon in daemons.values():
                    daemon.stop()
                daemons.clear()
        finally:
            for daemon in daemons.values():
                daemon.stop()
            kill_runners(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
        return
    try:
        bench_latency(workdir, egg, 10 if args.quick else 30)
        bench_throughput(workdir, egg, 2000, daemons)
        fill_finished(daemons, 10000 if args.quick else 100000)
        bench_large_state(daemons, 10000 if args.quick else 100000, 20 if args.quick else 50)
    finally:
        for daemon in daemons.values():
            daemon.stop()
        kill_runners(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
