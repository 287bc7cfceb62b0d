#!/usr/bin/env python3
"""Stress test: several scrapyd-rs binaries on one data directory, killed and restarted.

Runs N instances of the binary on one temporary data directory, schedules M jobs of the demo
project's ``args`` spider round-robin through them (spread over the first 70% of the run),
kills a random instance with SIGKILL K times at random moments during DURATION seconds and
restarts it after a short random pause, then waits until every instance shows nothing pending
or running and checks the invariants of shared/DESIGN.md:

- acknowledged means durable: every job whose ``schedule.json`` answered ``ok`` finished;
- exactly once: no job has two finished records or two Scrapy starts in its log;
- nothing vanishes: nothing is left pending or running, and no stray files stay in ``running/``;
- every instance lists the same finished history, and no instance ran more than ``max_proc``
  crawls at once (sampled).

It prints what it counted and exits with status 1 if an invariant was violated.

Usage (from the repository root, after ``cargo build --release`` and one ``cargo test`` run,
which provisions the Python and builds the egg)::

    python3 tests/stress/instances.py [--instances 3] [--jobs 300] [--kills 5] [--duration 120]
        [--max-proc 2] [--poll-interval 1.0] [--binary target/release/scrapyd-rs]
        [--python target/test-venv/bin/python] [--egg target/test-eggs/demo-<newest>.egg]
        [--seed N] [--keep]

``--keep`` leaves the temporary directory (data/ and each instance's etc/ log) for inspection;
it is kept anyway when a violation is found. Python standard library only.
"""

import argparse
import collections
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def newest_egg():
    eggs = glob.glob(os.path.join(REPO, "target", "test-eggs", "demo-*.egg"))
    return max(eggs, key=os.path.getmtime) if eggs else None


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=3, help="binaries sharing the directory (N)")
    parser.add_argument("--jobs", type=int, default=300, help="jobs to schedule (M)")
    parser.add_argument("--kills", type=int, default=5, help="kill -9 + restart events (K)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of scheduling and kills")
    parser.add_argument("--max-proc", type=int, default=2, help="max_proc of each instance")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="poll_interval of each instance")
    parser.add_argument("--binary", default=os.path.join(REPO, "target", "release", "scrapyd-rs"))
    parser.add_argument("--python", default=os.path.join(REPO, "target", "test-venv", "bin", "python"))
    parser.add_argument("--egg", default=newest_egg(), help="the demo egg (default: newest in target/test-eggs)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed; default: from the clock)")
    parser.add_argument("--settle", type=float, default=600.0, help="seconds to wait for the jobs to finish")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    for name in ("binary", "python", "egg"):
        path = getattr(args, name)
        if not path or not os.path.exists(path):
            parser.error(f"--{name}: {path!r} does not exist")
    return args


# ----------------------------------------------------------------------------- HTTP


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port, path, fields=None, timeout=60.0):
    """One request; the JSON answer. Raises OSError when the daemon cannot be reached."""
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read())
    except urllib.error.URLError as exc:
        raise OSError(str(exc)) from exc


# ----------------------------------------------------------------------------- instances


class Instance:
    """One binary on the shared data directory; restarts get a new port."""

    def __init__(self, name, data, etc, options):
        self.name = name
        self.data = data
        self.etc = etc
        self.options = options
        self.port = None
        self.proc = None
        self.starts = 0

    def start(self):
        port = free_port()
        conf = os.path.join(self.etc, f"{self.name}.conf")
        with open(conf, "w") as f:
            f.write(f"[scrapyd]\nbind_address = 127.0.0.1\nhttp_port = {port}\nnode_name = {self.name}\n")
            f.write(self.options)
        log = os.path.join(self.etc, f"{self.name}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPYD_") and k != "RUST_LOG"}
        env["HOME"] = self.etc
        with open(os.path.join(self.etc, f"{self.name}.stderr"), "ab") as stderr:
            proc = subprocess.Popen(
                [ARGS.binary, "--config", conf, "-l", log],
                cwd=self.data,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                call(port, "/daemonstatus.json", timeout=5)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start with {proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} does not answer on port {port}") from None
                time.sleep(0.05)
        self.port, self.proc = port, proc
        self.starts += 1

    def kill9(self):
        proc, self.proc, self.port = self.proc, None, None
        if proc is not None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self):
        proc, self.proc, self.port = self.proc, None, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def kill_leftover_crawls(data):
    """Kills processes still working in the data directory (crawls outlive their daemons)."""
    real = os.path.realpath(data)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == real:
                os.kill(int(entry), signal.SIGKILL)
        except OSError:
            pass


# ----------------------------------------------------------------------------- the run


def main():
    seed = ARGS.seed if ARGS.seed is not None else int(time.time() * 1000) % 1_000_000_007
    rng = random.Random(seed)
    root = tempfile.mkdtemp(prefix="scrapyd-rs-stress-")
    data, etc = os.path.join(root, "data"), os.path.join(root, "etc")
    os.makedirs(data)
    os.makedirs(etc)
    print(f"seed {seed}; directory {root}", flush=True)
    options = (
        f"python = {ARGS.python}\nmax_proc = {ARGS.max_proc}\nmax_proc_per_cpu = 0\n"
        f"poll_interval = {ARGS.poll_interval}\njobs_to_keep = 1000000\nfinished_to_keep = 1000000\n"
    )
    instances = [Instance(f"inst{i}", data, etc, options) for i in range(ARGS.instances)]
    table_lock = threading.Lock()  # taken to kill an instance, so no port is read half-way
    started = time.monotonic()
    violations = []
    try:
        for instance in instances:
            instance.start()
        with open(ARGS.egg, "rb") as f:
            egg = f.read()
        answer = call(instances[0].port, "/addversion.json", {"project": "demo", "version": "1", "egg": egg})
        assert answer["status"] == "ok", answer

        acked, unacked, refused = [], [], []
        kills = []
        most = collections.Counter()
        stop_sampling = threading.Event()

        def port_of(instance):
            with table_lock:
                return instance.port

        def scheduler():
            gap = ARGS.duration * 0.7 / max(ARGS.jobs, 1)
            begin = time.monotonic()
            for i in range(ARGS.jobs):
                delay = begin + i * gap - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                job = f"s-{i:05d}"
                fields = {"project": "demo", "spider": "args", "jobid": job}
                # Round-robin; an instance being restarted is skipped for the next one up.
                for step in range(len(instances)):
                    port = port_of(instances[(i + step) % len(instances)])
                    if port is not None:
                        break
                try:
                    answer = call(port, "/schedule.json", fields) if port else None
                except OSError:
                    answer = None
                if answer is None:
                    unacked.append(job)
                elif answer.get("status") == "ok":
                    acked.append(job)
                else:
                    refused.append((job, answer))

        def killer():
            moments = sorted(rng.uniform(0.05, 0.85) * ARGS.duration for _ in range(ARGS.kills))
            begin = time.monotonic()
            for moment in moments:
                delay = begin + moment - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                victim = rng.choice(instances)
                with table_lock:
                    victim.kill9()
                kills.append((round(time.monotonic() - started, 1), victim.name))
                time.sleep(rng.uniform(0.0, 2.0))  # the instance stays down a moment
                victim.start()  # sets its port only once it answers

        def sampler():
            while not stop_sampling.wait(0.5):
                for instance in instances:
                    port = port_of(instance)
                    if port is None:
                        continue
                    try:
                        running = call(port, "/listjobs.json", timeout=10)["running"]
                    except (OSError, KeyError, ValueError):
                        continue
                    own = sum(1 for job in running if job.get("node_name") == instance.name)
                    most[instance.name] = max(most[instance.name], own)

        threads = [threading.Thread(target=f, daemon=True) for f in (scheduler, killer, sampler)]
        for thread in threads:
            thread.start()
        for thread in threads[:2]:
            thread.join()
        print(f"scheduling and kills done at {time.monotonic() - started:.1f}s; kills: {kills}", flush=True)

        # Wait until every instance shows nothing pending or running.
        deadline = time.monotonic() + ARGS.settle
        while True:
            statuses = [call(i.port, "/daemonstatus.json") for i in instances]
            if all(s["pending"] == 0 and s["running"] == 0 for s in statuses):
                break
            if time.monotonic() > deadline:
                violations.append(f"not settled after {ARGS.settle}s: {statuses}")
                break
            time.sleep(0.5)
        stop_sampling.set()
        threads[2].join()
        settled = time.monotonic() - started

        # --- what every instance lists
        views = {}
        for instance in instances:
            answer = call(instance.port, "/listjobs.json")
            views[instance.name] = answer
            for state in ("pending", "running"):
                if answer[state]:
                    violations.append(f"{instance.name} still lists {state}: {[j['id'] for j in answer[state]]}")
        keyed = {
            name: sorted((j["id"], j["outcome"], j["node_name"], j["start_time"]) for j in view["finished"])
            for name, view in views.items()
        }
        first = instances[0].name
        for name, view in keyed.items():
            if view != keyed[first]:
                violations.append(f"{name}'s finished list differs from {first}'s")
        finished = views[first]["finished"]
        records = collections.Counter(j["id"] for j in finished)
        outcomes = collections.Counter(j["outcome"] for j in finished)
        by_node = collections.Counter(j["node_name"] for j in finished)

        # --- what is on disk
        with open(os.path.join(data, "spool", ".scrapyd-rs", "finished.jl")) as f:
            lines = collections.Counter(json.loads(line)["id"] for line in f if line.strip())
        log_dir = os.path.join(data, "logs", "demo", "args")
        # Only the crawl logs: the daemon also writes LogParser's <job>.json beside each.
        names = os.listdir(log_dir) if os.path.isdir(log_dir) else []
        logs = {name[: -len(".log")]: name for name in names if name.endswith(".log")}
        starts, closed = {}, {}
        for job, name in logs.items():
            with open(os.path.join(log_dir, name), errors="replace") as f:
                text = f.read()
            starts[job] = text.count("Spider opened")
            closed[job] = "Spider closed (finished)" in text
        running_dir = os.path.join(data, "spool", "demo", "running")
        leftovers = sorted(os.listdir(running_dir)) if os.path.isdir(running_dir) else []
        temp_files = [
            os.path.join(d, n) for d, _, names in os.walk(os.path.join(data, "spool")) for n in names if n.startswith(".tmp-")
        ]

        scheduled = ARGS.jobs
        lost = sorted(set(acked) - set(records))
        twice = sorted({j for j, n in records.items() if n > 1} | {j for j, n in lines.items() if n > 1}
                       | {j for j, n in starts.items() if n > 1})
        finished_unacked = sorted(set(unacked) & set(records))
        lost_but_ran = sorted(j["id"] for j in finished if j["outcome"] == "lost" and closed.get(j["id"]))
        never_started_logs = sorted(j for j in records if j not in logs)
        for found, what in [
            (lost, "acknowledged but never finished"),
            (twice, "run or recorded twice"),
            (refused[:5], "refused schedules"),
            (leftovers, "files left in spool/demo/running"),
            (temp_files, "temporary files left"),
            (lost_but_ran, "recorded lost although the crawl ran to its end"),
        ]:
            if found:
                violations.append(f"{what}: {found}")
        if any(n > ARGS.max_proc for n in most.values()):
            violations.append(f"an instance ran more than max_proc crawls at once: {dict(most)}")

        print(f"instances          {ARGS.instances} (max_proc {ARGS.max_proc} each), kills {len(kills)}")
        print(f"scheduled          {scheduled}")
        print(f"acknowledged       {len(acked)}  (unanswered: {len(unacked)}, of which ran anyway: "
              f"{len(finished_unacked)}; refused: {len(refused)})")
        print(f"run                {len(records)} finished records ({sum(lines.values())} lines in finished.jl), "
              f"{len(logs)} log files, {sum(starts.values())} Scrapy starts")
        print(f"run twice          {len(twice)}  {twice[:10]}")
        print(f"lost               {len(lost)}  (acknowledged, never finished) {lost[:10]}")
        print(f"outcomes           {dict(outcomes)}")
        print(f"  lost but ran     {len(lost_but_ran)}  {lost_but_ran[:10]}")
        print(f"  no log (never started) {len(never_started_logs)}  {never_started_logs[:10]}")
        print(f"by instance        {dict(sorted(by_node.items()))}")
        print(f"most at once       {dict(sorted(most.items()))} (sampled every 0.5 s)")
        print(f"leftovers          running/: {leftovers[:10]}, .tmp-: {temp_files[:10]}")
        print(f"time               {settled:.1f}s until settled (jobs scheduled over {ARGS.duration * 0.7:.0f}s, "
              f"kills within {ARGS.duration * 0.85:.0f}s)")
    finally:
        for instance in instances:
            instance.stop()
        kill_leftover_crawls(data)
    if violations:
        print("VIOLATIONS:")
        for violation in violations:
            print(f"  - {violation}")
        print(f"data kept in {root}")
        return 1
    print("OK: no invariant violated")
    if ARGS.keep:
        print(f"data kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    ARGS = parse_args()
    sys.exit(main())
