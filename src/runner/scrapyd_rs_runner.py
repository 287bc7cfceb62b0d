"""Run a Scrapy command for scrapyd-rs: ``python -m scrapyd_rs_runner <scrapy args...>``.

scrapyd-rs embeds this file, writes it into a directory D and starts it with D
prepended to PYTHONPATH, in the daemon's working directory. It plays the part of
stock Scrapyd's ``scrapyd.runner`` (same command line, same environment, same
egg semantics) without ``pkg_resources``, which setuptools is removing, and
without importing Scrapyd itself: the daemon tells us which egg to use.

Environment contract:

``SCRAPY_PROJECT`` (required)
    The project name; Scrapy uses it to pick a ``[settings]`` entry of
    ``scrapy.cfg`` when no egg is activated.
``SCRAPYD_EGG_VERSION`` (optional)
    Set by the daemon exactly as stock Scrapyd does. Informational only: the
    egg is chosen by the daemon, not by us.
``SCRAPYD_RS_EGG`` (optional)
    Absolute path of the egg to activate. When unset or empty, no egg is
    activated and Scrapy resolves the project itself (``SCRAPY_SETTINGS_MODULE``
    or ``scrapy.cfg``), as stock Scrapyd does when it has no egg.
``SCRAPYD_RS_RUNNER_DIR`` (optional)
    D, removed from ``PYTHONPATH`` so that processes spawned by spiders do not
    inherit it.
``SCRAPYD_RS_RESULT`` (optional)
    Where to record the outcome of the command as JSON. When set, this process
    forks: the child runs Scrapy and this process stays as a small parent that
    waits for it, so the outcome is recorded even when the child is killed by a
    signal, and even when the daemon that started us is gone (a re-adopting
    daemon is not our parent and cannot wait for us).

Exit status: the Scrapy command's, or 1 for a bad egg, or 3 when Scrapy cannot
be imported. A child killed by a signal makes the parent die of the same signal.
"""

import configparser
import json
import os
import re
import signal
import sys
import time
import zipfile

RESULT_ENV = "SCRAPYD_RS_RESULT"
EGG_ENV = "SCRAPYD_RS_EGG"
RUNNER_DIR_ENV = "SCRAPYD_RS_RUNNER_DIR"
PROJECT_ENV = "SCRAPY_PROJECT"
SETTINGS_ENV = "SCRAPY_SETTINGS_MODULE"

#: Exit status when Scrapy cannot be imported, distinct from Scrapy's own 1 and 2
#: so the daemon can tell a broken environment from a broken project.
EXIT_NO_SCRAPY = 3

#: Signals the parent passes on to the child: the ones the daemon uses to cancel
#: a job (SIGKILL cannot be caught and needs no forwarding).
FORWARDED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class BadEggError(Exception):
    """The egg cannot be activated; the message says why, on one line."""


def fail(message, code=1):
    """Print one line to stderr and exit: the daemon shows stderr to API clients."""
    sys.stderr.write(" ".join(str(message).split("\n")) + "\n")
    sys.stderr.flush()
    sys.exit(code)


def forget_runner_dir():
    """Drop D from ``PYTHONPATH`` in ``os.environ`` only.

    ``sys.path`` keeps it (we were imported from there), but anything the
    spiders spawn must see the daemon's environment, not ours.
    """
    runner_dir = os.environ.get(RUNNER_DIR_ENV)
    pythonpath = os.environ.get("PYTHONPATH")
    if not runner_dir or pythonpath is None:
        return
    target = os.path.abspath(runner_dir)
    kept = [p for p in pythonpath.split(os.pathsep) if not p or os.path.abspath(p) != target]
    if any(kept):
        os.environ["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        del os.environ["PYTHONPATH"]


def write_json_atomically(path, value):
    """Write ``value`` as JSON to ``path`` so readers see the old file or the whole new one.

    The data is fsynced before the rename and the directory after it, so the
    record survives a crash of the machine right after we exit.
    """
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# --------------------------------------------------------------------------- egg


def settings_module_of(entry_point):
    """Return the module of an entry point value such as ``pkg.settings:attr [extra]``."""
    match = re.match(r"\s*([\w.]+)", entry_point)
    if not match:
        raise BadEggError(f"the egg's [scrapy] settings entry point is malformed: {entry_point!r}")
    return match.group(1)


def egg_settings_module(egg_path):
    """Read the ``[scrapy] settings`` entry point of the egg, as pkg_resources would."""
    if not zipfile.is_zipfile(egg_path):
        raise BadEggError(f"{egg_path} is not a zip file")
    try:
        with zipfile.ZipFile(egg_path) as egg:
            text = egg.read("EGG-INFO/entry_points.txt").decode("utf-8")
    except KeyError:
        raise BadEggError(
            "the egg has no EGG-INFO/entry_points.txt"
            " (build it with scrapyd-deploy or setup.py bdist_egg)"
        ) from None
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise BadEggError(f"cannot read EGG-INFO/entry_points.txt from {egg_path}: {exc}") from None
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # entry point names are case-sensitive
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        message = " ".join(str(exc).split())
        raise BadEggError(f"the egg's EGG-INFO/entry_points.txt is malformed: {message}") from None
    if not parser.has_option("scrapy", "settings"):
        raise BadEggError(
            "the egg has no [scrapy] settings entry point in EGG-INFO/entry_points.txt"
            " (build it with scrapyd-deploy or setup.py bdist_egg)"
        )
    return settings_module_of(parser.get("scrapy", "settings"))


def activate_egg(egg_path):
    """Make the egg importable and point Scrapy at its settings.

    Like stock Scrapyd the egg is *appended* to ``sys.path``: modules found
    earlier on the path (including the working directory) win. Python's
    zipimport handles the zip, including ``pkgutil.get_data`` for package data.
    ``SCRAPY_SETTINGS_MODULE`` is only set if the environment lacks it, as stock.
    """
    module = egg_settings_module(egg_path)
    sys.path.append(egg_path)
    os.environ.setdefault(SETTINGS_ENV, module)


# ------------------------------------------------------------------------ scrapy


def import_scrapy():
    """Import Scrapy or exit with one line naming the interpreter that lacks it."""
    try:
        import scrapy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken dependency raising anything
        fail(f"scrapyd-rs: Scrapy is not importable by {sys.executable}: {exc}", EXIT_NO_SCRAPY)


def record_stats_on_close(stats_path):
    """Write each closing crawler's stats to ``stats_path`` for the parent to merge.

    The receiver is connected to ``spider_closed`` for *any* sender on Scrapy's
    global dispatcher, so no project setting (EXTENSIONS, ADDONS) is touched.
    Receivers bound to a specific crawler (CoreStats, which sets finish_reason)
    run before sender-agnostic ones, so the stats are complete.
    """
    try:
        from pydispatch import dispatcher
        from scrapy import signals
    except ImportError as exc:  # a future Scrapy without PyDispatcher: crawl without stats
        sys.stderr.write(f"scrapyd-rs: crawl stats will not be recorded: {exc}\n")
        return

    def on_spider_closed(spider=None, sender=None, **_kwargs):
        crawler = getattr(spider, "crawler", None) or sender
        stats = getattr(crawler, "stats", None)
        if stats is None:
            return
        try:
            write_json_atomically(stats_path, stats.get_stats())
        except OSError as exc:
            sys.stderr.write(f"scrapyd-rs: cannot write crawl stats to {stats_path}: {exc}\n")

    dispatcher.connect(on_spider_closed, signal=signals.spider_closed, weak=False)


def run_scrapy(stats_path=None):
    """Activate the egg (if any) and run Scrapy's command line with our argv.

    Errors raised by the project (settings, spider imports) propagate as
    tracebacks with a non-zero exit, as with stock Scrapyd's runner.
    """
    if not os.environ.get(PROJECT_ENV):
        fail(f"scrapyd-rs: {PROJECT_ENV} is not set (the daemon sets it to the project name)")
    import_scrapy()
    egg_path = os.environ.get(EGG_ENV)
    if egg_path:
        try:
            activate_egg(egg_path)
        except BadEggError as exc:
            fail(f"BadEggError: {exc}")
    if stats_path:
        record_stats_on_close(stats_path)
    from scrapy.cmdline import execute

    sys.argv = [os.path.abspath(__file__)] + sys.argv[1:]
    execute()


# ------------------------------------------------------------------------ parent


class SignalForwarder:
    """Pass cancel signals received by the parent on to the child.

    Handlers are installed *before* forking so no signal is lost in between: a
    signal caught before the child's pid is known is queued and sent once it is,
    and one that reaches the child before it restored its own handlers is
    re-raised there once they are back.
    """

    def __init__(self):
        self.parent = os.getpid()
        self.child = None
        self.pending = []
        self.early_in_child = []
        self.previous = {}

    def install(self):
        for signum in FORWARDED_SIGNALS:
            self.previous[signum] = signal.signal(signum, self.handle)
        if hasattr(signal, "SIGCHLD"):
            # An inherited SIG_IGN would make the kernel reap the child behind our back.
            self.previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    def handle(self, signum, _frame):
        if os.getpid() != self.parent:
            self.early_in_child.append(signum)
        elif self.child is None:
            self.pending.append(signum)
        else:
            self.send(signum)

    def attach(self, child):
        """In the parent: remember the child and send it what arrived meanwhile."""
        self.child = child
        while self.pending:
            self.send(self.pending.pop(0))

    def detach(self):
        """In the child: put back the handlers we found, as if we had never been here."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        for signum in self.early_in_child:
            os.kill(os.getpid(), signum)

    def send(self, signum):
        try:
            os.kill(self.child, signum)
        except ProcessLookupError:
            pass  # already gone; waitpid will tell how


def read_stats(stats_path):
    """Return the stats the child recorded, or None if it recorded none."""
    try:
        with open(stats_path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def decode_status(status):
    """Split a waitpid status into (exit_code, signal), one of them None."""
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


def record_result(result_path, exit_code, signum, stats):
    record = {"exit_code": exit_code, "signal": signum, "stats": stats, "finished_at": time.time()}
    try:
        write_json_atomically(result_path, record)
        return True
    except OSError as exc:
        sys.stderr.write(f"scrapyd-rs: cannot write the crawl result to {result_path}: {exc}\n")
        return False


def exit_like(exit_code, signum):
    """Exit with the child's status, dying of its signal if it died of one."""
    sys.stdout.flush()
    sys.stderr.flush()
    if signum is None:
        os._exit(exit_code)
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (OSError, ValueError):
        pass  # SIGKILL and SIGSTOP cannot be changed, and need not be
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # the signal's default action is to ignore it


def record_identity(result_path):
    """Write ``<result>.pid``: this process's pid and start time, first thing.

    The daemon records the pid itself once the spawn returns; if it dies before that, this file
    is how a restarted daemon recognises the crawl (the start time, field 22 of
    ``/proc/<pid>/stat``, tells it from a later process that reuses the pid).
    """
    try:
        with open("/proc/self/stat", encoding="utf-8") as f:
            stat = f.read()
        start_ticks = int(stat[stat.rindex(")") + 2:].split(" ")[19])
        write_json_atomically(result_path + ".pid", {"pid": os.getpid(), "start_ticks": start_ticks})
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"scrapyd-rs: cannot record the crawl's pid: {exc}\n")


def supervise(result_path):
    """Fork. Return in the child; in the parent, wait, record the outcome, and exit like the child."""
    record_identity(result_path)
    stats_path = result_path + ".stats"
    remove_quietly(stats_path)
    forwarder = SignalForwarder()
    forwarder.install()
    try:
        child = os.fork()
    except OSError as exc:
        forwarder.detach()
        record_result(result_path, 1, None, None)
        fail(f"scrapyd-rs: cannot fork the crawl process: {exc}")
    if child == 0:
        forwarder.detach()
        return stats_path
    forwarder.attach(child)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    exit_code, signum = decode_status(status)
    if record_result(result_path, exit_code, signum, read_stats(stats_path)):
        remove_quietly(stats_path)
    exit_like(exit_code, signum)


def main():
    forget_runner_dir()
    stats_path = None
    result_path = os.environ.get(RESULT_ENV)
    if result_path and hasattr(os, "fork"):
        stats_path = supervise(os.path.abspath(result_path))
    run_scrapy(stats_path)


if __name__ == "__main__":
    main()
