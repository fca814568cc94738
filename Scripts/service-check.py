#!/usr/bin/env python3
"""Acceptance check for the Maildir daemon `pitchfilter serve` (issue 5, "Done when" 1-5).

Each check starts the daemon on a fresh Maildir, delivers messages the way an MDA does (write into tmp/, fsync,
rename into new/), measures, prints the numbers and ends with one PASS, FAIL or SKIP line. The exit status is 1 if
any check failed. Messages come from ../shared/corpora/spamassassin and samples/{corpus,heldout}, picked with a
seeded random.Random, so a run is repeatable.

"Byte-identical apart from our header": every header line whose field name starts with X-Pitch- (with its folded
continuation lines) is removed from both the original and the output, then the bytes are compared (SHA-256).

  burst    Done when 1 (latency): 1,000 messages (400 SpamAssassin ham, 200 SpamAssassin spam, 200 sample pitches,
           200 sample ham) delivered as fast as possible into an empty Maildir. Measures the seconds from the last
           delivery until every message carries X-Pitch-Status (must be <= 5), INBOX vs .Pitches counts; checks that
           each original is there exactly once, nothing is left in tmp/, and SIGTERM exits 0.
  kill     Done when 2 (crash safety): 2,000 messages delivered at a steady pace over ~25 s while the daemon is
           SIGKILLed and restarted 20 times at seeded random moments (deliveries go on while it is dead). Then all
           must be classified within 60 s, each original exactly once, no stale files in tmp/.
  moves    Done when 3 (learning from the user's moves): after 200 messages settled, 10 quarantined messages are
           moved to INBOX cur/ and 10 INBOX ham/unsure messages to .Pitches/cur/. `pitchfilter stats` must show
           +10 pitch and +10 ham within 15 s; reports each moved message's score before (header) and after
           (`pitchfilter classify --json`); at least half of each group must move in the expected direction.
  sigterm  Done when 4 (graceful stop): 500 messages, SIGTERM once ~50 are classified. Exit status 0 within 5 s, no
           file in any tmp/, every file complete (classified ones equal an original apart from our header,
           unclassified ones byte-identical and still in new/), 500 in all. After a restart all 500 get classified.
  faults   Done when 5 (never lose mail on failure): (a) read-only database: 20 messages stay untouched (or get
           tagged), the daemon keeps running and its log mentions the database; after the permissions are restored
           all get processed. (b) disk full (a 2 MiB tmpfs, needs root, else SKIP): messages stay byte-identical
           in new/, no partial file in any tmp/, the daemon keeps running and logging; after space is freed all get
           processed.
  turns    (beyond issue 5) one mailbox's backlog does not hold up another's mail, nor a reload: 3,000 messages
           wait in one mailbox when the daemon starts; once it is working through them, one message is delivered to
           a second mailbox (after the first by path). That message must be classified, and a SIGHUP that has the
           second mailbox quarantine its pitches instead of tagging them must be applied, while the first mailbox
           still has unclassified messages; a pitch delivered to the second then goes to its quarantine, and
           everything is there exactly once in both.
  all      runs burst, kill, moves, sigterm, faults, turns in that order.

Assumptions about the daemon (its contract): `serve --config FILE` runs in the foreground and logs on stderr;
quarantine folder ROOT/.Pitches (created if missing); the quarantined file keeps its base name (up to the first
',' or ':'); a rewritten file is replaced atomically (written elsewhere, then renamed); stats prints
`messages: pitch P, ham H` or `messages: none trained yet ...`.

    Scripts/service-check.py all [--pitchfilter PATH] [--workdir DIR] [--keep] [--seed N] [--scale F]
"""
import argparse
import collections
import dataclasses
import errno
import hashlib
import itertools
import json
import os
import pwd
import random
import re
import shutil
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / 'shared' / 'corpora' / 'spamassassin'
SCAN_INTERVAL = 2
MIX = (('sa-ham', 0.4), ('sa-spam', 0.2), ('pitch', 0.2), ('ham', 0.2))
QUARANTINE = '.Pitches'
FIELD_RE = re.compile(rb'^([!-9;-~]+)[ \t]*:')
OURS_RE = re.compile(rb'^x-pitch-[!-9;-~]*[ \t]*:', re.IGNORECASE)
STATUS_RE = re.compile(rb'^x-pitch-status[ \t]*:', re.IGNORECASE)
VALUE_RE = re.compile(r'^\s*(pitch|unsure|ham)\s*,\s*score=([0-9.eE+-]+)')
SHOW = 10  # examples printed per kind of problem


# ----------------------------------------------------------------------------------------------------------------
# Messages: header parsing, the stripped digest

def lines_of(data):
    """Lines with their endings; joining them gives back `data` exactly."""
    parts = data.split(b'\n')
    lines = [p + b'\n' for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def header_lines(data):
    """The lines of the header block (up to, not including, the first empty line)."""
    for line in lines_of(data):
        if line in (b'\n', b'\r\n'):
            return
        yield line


def strip_ours(data):
    """The message without any X-Pitch-* field (folded lines included); the body is never touched."""
    out, skipping, in_header = [], False, True
    for line in lines_of(data):
        if in_header and line in (b'\n', b'\r\n'):
            in_header = False
        if in_header:
            if skipping and line[:1] in (b' ', b'\t'):
                continue
            skipping = bool(OURS_RE.match(line))
            if skipping:
                continue
        out.append(line)
    return b''.join(out)


def stripped_digest(data):
    return hashlib.sha256(strip_ours(data)).hexdigest()


@dataclasses.dataclass
class Status:
    """The X-Pitch-Status fields of a message: their values and whether their line endings match the message's."""
    values: list
    ending_ok: bool = True

    @property
    def verdict(self):
        m = VALUE_RE.match(self.values[0]) if len(self.values) == 1 else None
        return m.group(1) if m else None

    @property
    def score(self):
        m = VALUE_RE.match(self.values[0]) if len(self.values) == 1 else None
        return float(m.group(2)) if m else None


def pitch_status(data):
    values, endings, other_ending, current = [], [], None, None
    for line in header_lines(data):
        if current is not None and line[:1] in (b' ', b'\t'):
            values[-1] += ' ' + line.strip().decode('utf-8', 'replace')
            continue
        current = None
        if STATUS_RE.match(line):
            values.append(line.split(b':', 1)[1].strip().decode('utf-8', 'replace'))
            endings.append(line.endswith(b'\r\n'))
            current = len(values) - 1
        elif other_ending is None and FIELD_RE.match(line) and not OURS_RE.match(line):
            other_ending = line.endswith(b'\r\n')
    ending_ok = other_ending is None or all(e == other_ending for e in endings)
    return Status(values, ending_ok)


def has_status(data):
    return any(STATUS_RE.match(line) for line in header_lines(data))


def base_of(name):
    return re.split('[,:]', name, maxsplit=1)[0]


# ----------------------------------------------------------------------------------------------------------------
# Message sources

@dataclasses.dataclass
class Original:
    src: str
    data: bytes
    name: str = ''  # the file name it was delivered under

    @property
    def digest(self):
        return stripped_digest(self.data)


def looks_like_message(path):
    try:
        with open(path, 'rb') as f:
            head = f.read(1024)
    except OSError:
        return False
    return head.startswith(b'From ') or bool(FIELD_RE.match(head))


def files_in(*folders):
    paths = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for name in sorted(os.listdir(folder), key=os.fsencode):
            path = folder / name
            if name.startswith('.') or name == 'cmds' or name.endswith('.md') or not path.is_file():
                continue
            if looks_like_message(path):
                paths.append(path)
    return paths


def message_pools():
    if not CORPUS.is_dir():
        raise SystemExit(f'error: the SpamAssassin corpus is not at {CORPUS}')
    corpus_dirs = sorted(p for p in CORPUS.iterdir() if p.is_dir())
    samples = REPO / 'samples'
    pools = {
        'sa-ham': files_in(*[d for d in corpus_dirs if 'ham' in d.name]),
        'sa-spam': files_in(*[d for d in corpus_dirs if 'spam' in d.name]),
        'pitch': files_in(samples / 'corpus' / 'pitch', samples / 'heldout' / 'pitch'),
        'ham': files_in(samples / 'corpus' / 'ham', samples / 'heldout' / 'ham'),
    }
    for kind, paths in pools.items():
        if not paths:
            raise SystemExit(f'error: no messages found for {kind}')
    return pools


def choose(pools, n, rng, max_size=None):
    """n messages in the MIX proportions, shuffled; a pool smaller than its share is used more than once."""
    chosen = []
    for i, (kind, share) in enumerate(MIX):
        k = n - len(chosen) if i == len(MIX) - 1 else round(n * share)
        pool = pools[kind]
        if max_size:
            pool = [p for p in pool if p.stat().st_size <= max_size]
        picks = []
        while len(picks) < k:
            picks += rng.sample(pool, min(k - len(picks), len(pool)))
        chosen += [Original(str(p), p.read_bytes()) for p in picks]
    rng.shuffle(chosen)
    return chosen


# ----------------------------------------------------------------------------------------------------------------
# Maildir

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def unique_name():
    """time.M<usec>P<pid>Q<counter>.host, as Maildir delivery agents name files."""
    with _counter_lock:
        q = next(_counter)
    t = time.time()
    return f'{int(t)}.M{int((t % 1) * 1e6)}P{os.getpid()}Q{q}.checkhost'


class Maildir:
    def __init__(self, root, owner=None):
        self.root = Path(root)
        self.owner = owner  # (uid, gid) for delivered files when the daemon runs as another user
        for sub in ('tmp', 'new', 'cur'):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def deliver(self, data):
        """Write into tmp/, fsync, rename into new/ - what an MDA does. Returns the file name."""
        name = unique_name()
        tmp = self.root / 'tmp' / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if self.owner:
            os.chown(tmp, *self.owner)
        os.rename(tmp, self.root / 'new' / name)
        return name

    def deliver_all(self, originals):
        for original in originals:
            original.name = self.deliver(original.data)

    def folders(self):
        """(label, path) of INBOX and every Maildir++ subfolder."""
        found = [('INBOX', self.root)]
        if self.root.is_dir():
            for entry in sorted(os.listdir(self.root)):
                path = self.root / entry
                if entry.startswith('.') and ((path / 'new').is_dir() or (path / 'cur').is_dir()):
                    found.append((entry, path))
        return found

    def message_paths(self):
        """(label like 'INBOX/new', path) of every message file in new/ and cur/ of every folder."""
        out = []
        for label, folder in self.folders():
            for sub in ('new', 'cur'):
                try:
                    names = sorted(os.listdir(folder / sub))
                except FileNotFoundError:
                    continue
                out += [(f'{label}/{sub}', folder / sub / n) for n in names if not n.startswith('.')]
        return out

    def tmp_files(self):
        out = []
        for _, folder in self.folders():
            try:
                out += [folder / 'tmp' / n for n in sorted(os.listdir(folder / 'tmp'))]
            except FileNotFoundError:
                pass
        return out

    def find_base(self, base):
        return [path for _, path in self.message_paths() if base_of(path.name) == base]


class Progress:
    """Counts files and classified files cheaply enough to poll every 50 ms (reads only files that changed)."""

    def __init__(self, maildir):
        self.maildir = maildir
        self.cache = {}

    def count(self):
        total = classified = 0
        for _, path in self.maildir.message_paths():
            try:
                st = path.stat()
                key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
                if key not in self.cache:
                    self.cache[key] = has_status(path.read_bytes())
            except FileNotFoundError:
                continue  # renamed under us; the next poll sees it
            total += 1
            classified += self.cache[key]
        return total, classified

    def wait(self, n, timeout, poll=0.05, daemon=None):
        """Until no file is unclassified and at least n files exist.

        Returns (done, monotonic time, total, classified)."""
        deadline = time.monotonic() + timeout
        while True:
            total, classified = self.count()
            now = time.monotonic()
            if total >= n and classified == total:
                return True, now, total, classified
            if now >= deadline or (daemon and not daemon.alive()):
                return False, now, total, classified
            time.sleep(poll)


# ----------------------------------------------------------------------------------------------------------------
# The daemon

LIVE = set()


class Daemon:
    """One `pitchfilter serve` process at a time; each start logs stderr to its own file."""

    def __init__(self, binary, config, logdir, wrapper=(), env=None):
        self.argv = [*wrapper, binary, 'serve', '--config', str(config)]
        self.logdir = Path(logdir)
        self.env = env
        self.proc = None
        self.starts = 0
        self.log = None
        self.notify = None  # the $NOTIFY_SOCKET it sends READY=1 to (an abstract socket: no file, any user)

    def start(self):
        self.starts += 1
        self.log = self.logdir / f'daemon-{self.starts:02d}.log'
        if self.notify:
            self.notify.close()
        address = f'pitchfilter-service-check-{os.getpid()}-{id(self)}-{self.starts}'
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind('\0' + address)
        env = dict(self.env or os.environ, NOTIFY_SOCKET='@' + address)
        with open(self.log, 'wb') as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, env=env)
        self.started = time.monotonic()
        LIVE.add(self)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        LIVE.discard(self)

    def terminate(self, limit=5.0):
        """SIGTERM; returns (exit status or None if still running after `limit` s, seconds to exit)."""
        if not self.alive():
            LIVE.discard(self)
            return self.proc.returncode if self.proc else None, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            rc = None
        seconds = time.monotonic() - t0
        if rc is None:
            self.kill()
        LIVE.discard(self)
        return rc, seconds

    def wait_ready(self, limit=10.0):
        """Waits up to `limit` s for READY=1 on $NOTIFY_SOCKET (sd_notify). True if the daemon is running."""
        while self.alive() and time.monotonic() - self.started < limit:
            if select.select([self.notify], [], [], 0.05)[0]:
                if b'READY=1' in self.notify.recv(4096).split(b'\n'):
                    print(f'    daemon ready (READY=1) {time.monotonic() - self.started:.2f} s after start')
                    return True
        if self.alive():
            print(f'    NOTE: no READY=1 within {limit:.0f} s; going on anyway')
        return self.alive()

    def log_text(self, which=None):
        try:
            return (which or self.log).read_text(errors='replace')
        except (OSError, TypeError):
            return ''

    def print_log_tail(self, lines=25):
        if not self.log:
            return
        tail = self.log_text().splitlines()[-lines:]
        print(f'    --- last {len(tail)} lines of {self.log} ---')
        for line in tail:
            print(f'    | {line}')


def kill_leftovers():
    for daemon in list(LIVE):
        daemon.kill()


def write_config(path, db, maildir_root):
    path.write_text(f'''[database]
path = "{db}"
[service]
scan_interval = {SCAN_INTERVAL}
[[mailbox]]
path = "{maildir_root}"
on_pitch = "quarantine"
on_unsure = "tag"
on_ham = "tag"
''')
    path.chmod(0o644)


def run_cli(binary, *args, wrapper=(), env=None):
    return subprocess.run([*wrapper, binary, *map(str, args)], capture_output=True, text=True, env=env)


def stats(binary, db):
    """(pitch, ham, learned, the `messages:` line, the `learned messages:` line) from `pitchfilter stats`."""
    out = run_cli(binary, 'stats', '--db', db)
    text = out.stdout
    messages = next((l for l in text.splitlines() if l.startswith('messages:')), '(no messages: line)')
    learned_line = next((l for l in text.splitlines() if l.startswith('learned messages:')), 'learned messages: 0')
    m = re.search(r'^messages:\s*pitch\s+(\d+),\s*ham\s+(\d+)', text, re.M)
    pitch, ham = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not m and 'none trained yet' not in messages:
        print(f'    stats output not understood (exit {out.returncode}): {text.strip()} {out.stderr.strip()}')
    learned = int(re.search(r'(\d+)', learned_line).group(1))
    return pitch, ham, learned, messages, learned_line


def classify(binary, db, paths):
    out = run_cli(binary, 'classify', '--db', db, '--json', *paths)
    results = {}
    for line in out.stdout.splitlines():
        try:
            obj = json.loads(line)
            results[obj['path']] = obj
        except (ValueError, KeyError):
            pass
    return results


# ----------------------------------------------------------------------------------------------------------------
# Verification of the final state

class Outcome:
    """Collects the problems of one check and prints its PASS/FAIL line."""

    def __init__(self, name):
        self.name = name
        self.problems = []

    def fail(self, problem):
        self.problems.append(problem)
        print(f'  FAIL: {problem}')

    def expect(self, ok, problem):
        if not ok:
            self.fail(problem)
        return ok

    def finish(self, daemon=None):
        if self.problems and daemon is not None:
            daemon.print_log_tail()
        print(f'{self.name}: {"FAIL" if self.problems else "PASS"}'
              + (f' ({len(self.problems)} problem(s))' if self.problems else ''))
        return not self.problems


def show(title, items):
    items = list(items)
    print(f'    {title}: {len(items)}')
    for item in items[:SHOW]:
        print(f'      {item}')
    if len(items) > SHOW:
        print(f'      ... and {len(items) - SHOW} more')


def verify(maildir, originals, outcome, require_classified=True):
    """Every original exactly once (stripped digest multiset and by base name), every file classified (or else
    byte-identical and still in INBOX/new), one well-formed X-Pitch-Status, pitches in .Pitches, others in INBOX."""
    by_name = {o.name: o for o in originals}
    full_digests = {hashlib.sha256(o.data).hexdigest() for o in originals}
    expected = collections.Counter(o.digest for o in originals)
    got, where = collections.Counter(), collections.defaultdict(list)
    per_folder = collections.Counter()
    unclassified, untouched_bad, several, malformed, endings, misfiled, renamed, swapped = ([] for _ in range(8))
    seen_bases = collections.Counter()
    for label, path in maildir.message_paths():
        data = path.read_bytes()
        digest = stripped_digest(data)
        got[digest] += 1
        where[digest].append(f'{label}/{path.name}')
        per_folder[label] += 1
        base = base_of(path.name)
        seen_bases[base] += 1
        original = by_name.get(base)
        if original is None:
            renamed.append(f'{label}/{path.name}')
        elif original.digest != digest:
            swapped.append(f'{label}/{path.name} (delivered from {original.src})')
        status = pitch_status(data)
        if not status.values:
            unclassified.append(f'{label}/{path.name}')
            if hashlib.sha256(data).hexdigest() not in full_digests or label != 'INBOX/new':
                untouched_bad.append(f'{label}/{path.name}')
            continue
        if len(status.values) > 1:
            several.append(f'{label}/{path.name}: {status.values}')
        elif status.verdict is None:
            malformed.append(f'{label}/{path.name}: {status.values[0]!r}')
        elif (status.verdict == 'pitch') != label.startswith(QUARANTINE + '/'):
            misfiled.append(f'{label}/{path.name}: {status.verdict}')
        if not status.ending_ok:
            endings.append(f'{label}/{path.name}')
    src_of = collections.defaultdict(list)
    for o in originals:
        src_of[o.digest].append(f'{o.name} (from {o.src})')
    missing = expected - got
    extra = got - expected

    print('    files per folder: ' + ', '.join(f'{k} {v}' for k, v in sorted(per_folder.items())))
    print(f'    total {sum(per_folder.values())} of {len(originals)} delivered')
    if missing:
        outcome.fail(f'{sum(missing.values())} message(s) missing (lost)')
        show('missing', (f'{d[:12]} x{c}: {", ".join(src_of[d])}' for d, c in missing.items()))
    if extra:
        dup = {d: c for d, c in extra.items() if d in expected}
        unknown = {d: c for d, c in extra.items() if d not in expected}
        if dup:
            outcome.fail(f'{sum(dup.values())} duplicate(s)')
            show('duplicated', (f'{", ".join(where[d])} (from {src_of[d][0]})' for d in dup))
        if unknown:
            outcome.fail(f'{sum(unknown.values())} file(s) match no original apart from X-Pitch-* (altered/partial)')
            show('altered or partial', (", ".join(where[d]) for d in unknown))
    if not missing and not extra:
        print('    every original present exactly once (stripped SHA-256 multiset equal)')
    if renamed:
        outcome.fail(f'{len(renamed)} file(s) whose base name is not one delivered')
        show('unknown base names', renamed)
    if swapped:
        outcome.fail(f'{len(swapped)} file(s) whose content is not what was delivered under that name')
        show('content differs from its name', swapped)
    if require_classified and unclassified:
        outcome.fail(f'{len(unclassified)} file(s) without X-Pitch-Status (not classified)')
        show('not classified', unclassified)
    elif unclassified:
        print(f'    not classified yet: {len(unclassified)}')
    if untouched_bad:
        outcome.fail(f'{len(untouched_bad)} unclassified file(s) not byte-identical to an original or not in INBOX/new')
        show('unclassified but changed or moved', untouched_bad)
    for items, what in ((several, 'more than one X-Pitch-Status'), (malformed, 'malformed X-Pitch-Status'),
                        (endings, 'X-Pitch-Status line ending differs from the message'),
                        (misfiled, 'verdict does not match the folder')):
        if items:
            outcome.fail(f'{len(items)} file(s): {what}')
            show(what, items)
    return per_folder


def check_tmp_empty(maildir, outcome):
    leftovers = maildir.tmp_files()
    if leftovers:
        outcome.fail(f'{len(leftovers)} file(s) left in tmp/')
        show('in tmp/', (f'{p.relative_to(maildir.root)} ({p.stat().st_size} bytes)' for p in leftovers))
    else:
        print('    tmp/ folders: empty')


def check_sigterm(daemon, outcome, limit=5.0):
    rc, seconds = daemon.terminate(limit)
    print(f'    SIGTERM: exit status {rc} after {seconds:.2f} s')
    outcome.expect(rc == 0, f'SIGTERM: exit status {rc} (want 0 within {limit:.0f} s)')
    return rc, seconds


def counts_line(per_folder):
    inbox = per_folder['INBOX/new'] + per_folder['INBOX/cur']
    pitches = per_folder[f'{QUARANTINE}/new'] + per_folder[f'{QUARANTINE}/cur']
    return f'INBOX {inbox}, {QUARANTINE} {pitches}'


# ----------------------------------------------------------------------------------------------------------------
# The checks

class Setup:
    """A fresh directory with a Maildir, a database path and a config for one check."""

    def __init__(self, ctx, name, maildir_root=None, owner=None, directory=None):
        self.dir = directory or Path(tempfile.mkdtemp(prefix=f'{name}-', dir=ctx.workdir))
        self.dir.chmod(0o755)
        self.db = self.dir / 'db' / 'db.sqlite'
        self.db.parent.mkdir()
        self.maildir = Maildir(maildir_root or self.dir / 'Maildir', owner)
        self.config = self.dir / 'config.toml'
        write_config(self.config, self.db, self.maildir.root)
        print(f'  directory: {self.dir}')

    def daemon(self, ctx, wrapper=(), env=None):
        return Daemon(ctx.binary, self.config, self.dir, wrapper, env)


def start_checked(daemon, setup, outcome):
    daemon.start()
    if not daemon.wait_ready():
        outcome.fail(f'daemon exited at start (status {daemon.proc.returncode})')
        return False
    return True


def check_burst(ctx):
    """Done when 1: 1,000 messages classified within 5 s of the last delivery."""
    print(f'burst: {ctx.n(1000)} messages delivered as fast as possible')
    out, n = Outcome('burst'), ctx.n(1000)
    setup = Setup(ctx, 'burst')
    originals = choose(ctx.pools, n, random.Random(ctx.seed * 100 + 1))
    daemon = setup.daemon(ctx)
    if not start_checked(daemon, setup, out):
        return out.finish(daemon)
    t0 = time.monotonic()
    setup.maildir.deliver_all(originals)
    last = time.monotonic()
    print(f'    delivered {n} in {last - t0:.2f} s')
    done, when, total, classified = Progress(setup.maildir).wait(n, 60, daemon=daemon)
    latency = when - last
    print(f'    classified {classified} of {total} files; {latency:.2f} s after the last delivery')
    out.expect(done, f'not all classified within 60 s ({classified} of {n}; daemon alive: {daemon.alive()})')
    out.expect(done and latency <= 5, f'latency {latency:.2f} s (want <= 5)')
    check_sigterm(daemon, out)
    per_folder = verify(setup.maildir, originals, out)
    print(f'    {counts_line(per_folder)}')
    check_tmp_empty(setup.maildir, out)
    return out.finish(daemon)


def check_kill(ctx):
    """Done when 2: SIGKILL at any moment loses and duplicates nothing."""
    n, kills, span = ctx.n(2000), 20, 25.0 * ctx.scale
    print(f'kill: {n} messages over ~{span:.0f} s, {kills} SIGKILL + restart at random moments')
    out = Outcome('kill')
    setup = Setup(ctx, 'kill')
    rng = random.Random(ctx.seed * 100 + 2)
    originals = choose(ctx.pools, n, rng)
    moments = sorted(rng.uniform(0.2, span) for _ in range(kills))
    daemon = setup.daemon(ctx)
    if not start_checked(daemon, setup, out):
        return out.finish(daemon)
    run_start = time.time()
    errors = []

    def deliver_steadily():
        try:
            t0 = time.monotonic()
            for i, original in enumerate(originals):
                delay = t0 + i * span / n - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                original.name = setup.maildir.deliver(original.data)
        except Exception as error:  # reported below; the check fails
            errors.append(error)

    t0 = time.monotonic()
    thread = threading.Thread(target=deliver_steadily, daemon=True)
    thread.start()
    restarts, dead_at_kill = 0, 0
    for moment in moments:
        time.sleep(max(0.0, t0 + moment - time.monotonic()))
        if not daemon.alive():
            dead_at_kill += 1
            print(f'    daemon had exited by itself (status {daemon.proc.returncode}) before kill {restarts + 1}')
            daemon.print_log_tail(10)
        daemon.kill()
        daemon.start()
        restarts += 1
    last_restart = time.time()
    thread.join()
    print(f'    delivered {n} in {time.monotonic() - t0:.2f} s; restarts done: {restarts}')
    out.expect(not errors, f'delivery failed: {errors[:1]}')
    out.expect(dead_at_kill == 0, f'the daemon had died by itself {dead_at_kill} time(s)')
    done, when, total, classified = Progress(setup.maildir).wait(n, 60, daemon=daemon)
    print(f'    classified {classified} of {total} files, {when - t0:.1f} s after the first delivery')
    out.expect(done, f'not all classified within 60 s ({classified} of {n}; daemon alive: {daemon.alive()})')
    check_sigterm(daemon, out)
    per_folder = verify(setup.maildir, originals, out)
    print(f'    {counts_line(per_folder)}')
    leftovers = setup.maildir.tmp_files()
    show('files in tmp/ (partial writes of killed instances)',
         (f'{p.relative_to(setup.maildir.root)} {p.stat().st_size} bytes, '
          f'{"before" if p.stat().st_mtime < last_restart else "after"} the last restart' for p in leftovers))
    stale = [p for p in leftovers if p.stat().st_mtime < run_start - 1]
    out.expect(not stale, f'{len(stale)} file(s) in tmp/ older than the run')
    if ctx.strict_tmp:
        out.expect(not leftovers, f'{len(leftovers)} file(s) left in tmp/ (--strict-tmp)')
    return out.finish(daemon)


def check_moves(ctx):
    """Done when 3: moving a message in or out of .Pitches trains it."""
    n, moved_per_side = ctx.n(200), 10
    print(f'moves: {n} messages, then {moved_per_side} out of and {moved_per_side} into {QUARANTINE}')
    out = Outcome('moves')
    setup = Setup(ctx, 'moves')
    rng = random.Random(ctx.seed * 100 + 3)
    originals = choose(ctx.pools, n, rng)
    daemon = setup.daemon(ctx)
    if not start_checked(daemon, setup, out):
        return out.finish(daemon)
    setup.maildir.deliver_all(originals)
    done, _, total, classified = Progress(setup.maildir).wait(n, 60, daemon=daemon)
    if not out.expect(done, f'the first {n} were not all classified within 60 s ({classified} of {total})'):
        return out.finish(daemon)
    p0, h0, l0, messages0, learned0 = stats(ctx.binary, setup.db)
    print(f'    before: {messages0}; {learned0}')

    candidates = {'to-ham': [], 'to-pitch': []}
    seen = set()
    for label, path in setup.maildir.message_paths():
        data = path.read_bytes()
        status, digest = pitch_status(data), stripped_digest(data)
        if digest in seen or status.verdict is None:
            continue  # one of each content, so each move is a new training
        seen.add(digest)
        if label.startswith(QUARANTINE + '/') and status.verdict == 'pitch':
            candidates['to-ham'].append((path, status.score))
        elif label.startswith('INBOX/') and status.verdict in ('ham', 'unsure'):
            candidates['to-pitch'].append((path, status.score))
    moves = []  # (direction, new path, score before)
    for direction, dest in (('to-ham', setup.maildir.root / 'cur'),
                            ('to-pitch', setup.maildir.root / QUARANTINE / 'cur')):
        pool = candidates[direction]
        out.expect(len(pool) >= moved_per_side, f'only {len(pool)} candidates for {direction}')
        dest.mkdir(parents=True, exist_ok=True)
        for path, score in rng.sample(pool, min(moved_per_side, len(pool))):
            target = dest / f'{unique_name()}:2,S'
            os.rename(path, target)
            moves.append((direction, target, score))
    n_ham = sum(1 for m in moves if m[0] == 'to-ham')
    n_pitch = len(moves) - n_ham

    deadline, t0 = time.monotonic() + 15, time.monotonic()
    while True:
        p1, h1, l1, messages1, learned1 = stats(ctx.binary, setup.db)
        if (p1 >= p0 + n_pitch and h1 >= h0 + n_ham) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    print(f'    after {time.monotonic() - t0:.1f} s: {messages1}; {learned1}')
    out.expect(h1 >= h0 + n_ham, f'ham went {h0} -> {h1} (want >= {h0 + n_ham}) within 15 s')
    out.expect(p1 >= p0 + n_pitch, f'pitch went {p0} -> {p1} (want >= {p0 + n_pitch}) within 15 s')

    report_scores(ctx, setup, moves, out)
    check_sigterm(daemon, out)
    return out.finish(daemon)


def report_scores(ctx, setup, moves, out):
    """The moved messages' scores before (their header) and after (classify): ham-moved should drop, pitch rise."""
    located = []
    for direction, target, before in moves:
        found = setup.maildir.find_base(base_of(target.name))  # the daemon may have renamed it since
        located.append((direction, found[0] if found else target, before))
    results = classify(ctx.binary, setup.db, [str(p) for _, p, _ in located])
    right = collections.Counter()
    print('    direction  before   after    file')
    for direction, path, before in located:
        after = results.get(str(path), {}).get('score')
        ok = after is not None and before is not None and (
            round(after, 4) < before if direction == 'to-ham' else round(after, 4) > before)
        right[direction] += ok
        after_text = f'{after:.4f}' if after is not None else 'n/a'
        before_text = f'{before:.4f}' if before is not None else 'n/a'
        print(f'    {direction:9}  {before_text:7}  {after_text:7}  {path.relative_to(setup.maildir.root)}'
              f'{"" if ok else "   (not in the expected direction)"}')
    for direction, word in (('to-ham', 'dropped'), ('to-pitch', 'rose')):
        total = sum(1 for m in moves if m[0] == direction)
        print(f'    {direction}: {right[direction]} of {total} {word}')
        out.expect(right[direction] * 2 >= total, f'{direction}: only {right[direction]} of {total} {word}')


def check_sigterm_busy(ctx):
    """Done when 4: SIGTERM while busy exits 0 within 5 s and leaves every message whole."""
    n = ctx.n(500)
    print(f'sigterm: {n} messages, SIGTERM once ~{max(1, n // 10)} are classified')
    out = Outcome('sigterm')
    setup = Setup(ctx, 'sigterm')
    originals = choose(ctx.pools, n, random.Random(ctx.seed * 100 + 4))
    setup.maildir.deliver_all(originals)  # all waiting, so the daemon is surely busy
    daemon = setup.daemon(ctx)
    daemon.start()
    progress = Progress(setup.maildir)
    deadline, classified = time.monotonic() + 30, 0
    while daemon.alive() and time.monotonic() < deadline:
        _, classified = progress.count()
        if classified >= max(1, n // 10):
            break
        time.sleep(0.01)
    print(f'    classified at SIGTERM: {classified}')
    out.expect(classified > 0, 'nothing classified within 30 s before SIGTERM')
    check_sigterm(daemon, out)
    _, after = progress.count()
    print(f'    classified at exit: {after}' + ('  (NOTE: all done before SIGTERM; not busy)' if after == n else ''))
    verify(setup.maildir, originals, out, require_classified=False)
    check_tmp_empty(setup.maildir, out)

    print('    restart: all must get classified')
    daemon.start()
    done, _, total, classified = progress.wait(n, 30, daemon=daemon)
    out.expect(done, f'after the restart only {classified} of {total} classified within 30 s')
    check_sigterm(daemon, out)
    per_folder = verify(setup.maildir, originals, out)
    print(f'    {counts_line(per_folder)}')
    return out.finish(daemon)


def nobody_wrapper():
    """How to run the daemon unprivileged when we are root (root ignores file permissions)."""
    user = pwd.getpwnam('nobody')
    if shutil.which('setpriv'):
        wrapper = ['setpriv', f'--reuid={user.pw_uid}', f'--regid={user.pw_gid}', '--clear-groups']
    elif shutil.which('runuser'):
        wrapper = ['runuser', '-u', 'nobody', '--']
    else:
        return None, None
    return wrapper, (user.pw_uid, user.pw_gid)


def chown_tree(root, owner):
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, *owner)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), *owner)


def set_db_writable(db, writable):
    for path in db.parent.glob(db.name + '*'):
        path.chmod(0o644 if writable else 0o444)
    db.parent.chmod(0o755 if writable else 0o555)


def check_readonly_db(ctx):
    """Done when 5a: a read-only database loses no mail and does not stop the daemon."""
    n = ctx.n(20, minimum=5)
    print(f'faults (a): read-only database, {n} messages')
    out = Outcome('faults (a) read-only database')
    wrapper, owner, env = (), None, None
    if os.geteuid() == 0:
        wrapper, owner = nobody_wrapper()
        if wrapper is None:
            print('faults (a): SKIP (root, and neither setpriv nor runuser to drop privileges)')
            return None
        os.chmod(ctx.workdir, 0o755)
    setup = Setup(ctx, 'faults-readonly', owner=owner)
    if owner:
        env = dict(os.environ, HOME=str(setup.dir))
        chown_tree(setup.dir, owner)
        print(f'    running as root: the daemon runs as nobody via {wrapper[0]}')
    rng = random.Random(ctx.seed * 100 + 5)
    seed_ham = ctx.pools['ham'][0]
    made = run_cli(ctx.binary, 'train', '--db', setup.db, '--ham', seed_ham, wrapper=wrapper, env=env)
    if not out.expect(made.returncode == 0 and setup.db.exists(),
                      f'could not create the database: {made.stderr.strip() or made.stdout.strip()}'):
        return out.finish()
    originals = choose(ctx.pools, n, rng)
    set_db_writable(setup.db, False)
    daemon = setup.daemon(ctx, wrapper, env)
    try:
        if not start_checked(daemon, setup, out):
            return out.finish(daemon)
        setup.maildir.deliver_all(originals)
        time.sleep(10)
        alive = daemon.alive()
        out.expect(alive, f'daemon exited (status {daemon.proc.returncode}) with a read-only database')
        _, classified = Progress(setup.maildir).count()
        print(f'    after 10 s: {n - classified} untouched in new/, {classified} classified with the header; '
              f'daemon running: {alive}')
        verify(setup.maildir, originals, out, require_classified=False)
        log = daemon.log_text()
        mentions = any(w in log.lower() for w in ('database', 'sqlite', str(setup.db).lower()))
        out.expect(mentions, 'the log does not mention the database')
        if mentions:
            line = next(l for l in log.splitlines() if any(w in l.lower() for w in ('database', 'sqlite')))
            print(f'    log: {line[:160]}')
    finally:
        set_db_writable(setup.db, True)
    if daemon.alive():
        done, _, total, classified = Progress(setup.maildir).wait(n, 4 * SCAN_INTERVAL + 10, daemon=daemon)
        print(f'    permissions restored: {classified} of {total} classified')
        out.expect(done, f'after restoring permissions only {classified} of {total} classified')
        check_sigterm(daemon, out)
        verify(setup.maildir, originals, out)
    return out.finish(daemon)


def fill_up(path):
    """Writes until the file system is full; returns the bytes written."""
    written = 0
    with open(path, 'wb', buffering=0) as f:
        for chunk in (1 << 16, 1 << 12, 1):
            block = b'\0' * chunk
            while True:
                try:
                    written += f.write(block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    return written


def check_disk_full(ctx):
    """Done when 5b: a full disk loses no mail, leaves no partial file, and does not stop the daemon."""
    n = ctx.n(20, minimum=5)
    print(f'faults (b): disk full, {n} messages on a 2 MiB tmpfs')
    if os.geteuid() != 0:
        print('faults (b): SKIP (mounting a small tmpfs needs root)')
        return None
    out = Outcome('faults (b) disk full')
    base = Path(tempfile.mkdtemp(prefix='faults-diskfull-', dir=ctx.workdir))
    mount = base / 'mnt'
    mount.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        print(f'faults (b): SKIP (mount -t tmpfs failed: {mounted.stderr.strip()})')
        return None
    daemon = None
    try:
        setup = Setup(ctx, 'faults-diskfull', maildir_root=mount / 'Maildir', directory=base)
        originals = choose(ctx.pools, n, random.Random(ctx.seed * 100 + 6), max_size=32 << 10)
        setup.maildir.deliver_all(originals)
        filler = mount / 'filler'
        filled = fill_up(filler)
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        print(f'    filler {filled} bytes; {free} bytes free')
        daemon = setup.daemon(ctx)
        if not start_checked(daemon, setup, out):
            return out.finish(daemon)
        time.sleep(3 * SCAN_INTERVAL + 2)
        alive = daemon.alive()
        out.expect(alive, f'daemon exited (status {daemon.proc.returncode}) on a full disk')
        _, classified = Progress(setup.maildir).count()
        print(f'    full disk, after {3 * SCAN_INTERVAL + 2} s: {classified} classified; daemon running: {alive}')
        verify(setup.maildir, originals, out, require_classified=False)
        check_tmp_empty(setup.maildir, out)
        log = daemon.log_text()
        out.expect(log.strip(), 'the daemon logged nothing')
        says_space = any(w in log.lower() for w in ('space', 'enospc', 'full', 'errno 28'))
        print(f'    log: {len(log.splitlines())} lines; mentions lack of space: {says_space}')
        filler.unlink()
        if daemon.alive():
            done, _, total, classified = Progress(setup.maildir).wait(n, 4 * SCAN_INTERVAL + 10, daemon=daemon)
            print(f'    space freed: {classified} of {total} classified')
            out.expect(done, f'after freeing space only {classified} of {total} classified')
            check_sigterm(daemon, out)
            verify(setup.maildir, originals, out)
            check_tmp_empty(setup.maildir, out)
        return out.finish(daemon)
    finally:
        if daemon:
            daemon.kill()
        subprocess.run(['umount', str(mount)], check=False)


def check_faults(ctx):
    results = [check_readonly_db(ctx), check_disk_full(ctx)]
    if all(r is None for r in results):
        return None
    return all(r is not False for r in results)


def check_turns(ctx):
    """One mailbox's backlog, worked through by the start-up scan, leaves the loop to another mailbox's arrivals and
    to a reload."""
    # At least 1,000 at any scale: a smaller backlog may be done before the other messages are even delivered.
    n = ctx.n(3000, minimum=1000)
    print(f'turns: {n} messages waiting in one mailbox at the start, then one into another, a reload, and a pitch')
    out = Outcome('turns')
    setup = Setup(ctx, 'turns')
    # After the backlog's mailbox in the order of their paths, which start-up scans no longer go by alone.
    other = Maildir(setup.dir / 'Other')
    base_config = setup.config.read_text()

    def configure(other_on_pitch):
        setup.config.write_text(base_config + f'[[mailbox]]\npath = "{other.root}"\non_pitch = "{other_on_pitch}"\n'
                                'on_unsure = "tag"\non_ham = "tag"\n')

    configure('tag')
    rng = random.Random(ctx.seed * 100 + 6)
    originals = choose(ctx.pools, n, rng)
    # A message the starter model calls a pitch, for the policy the reload sets.
    candidates = rng.sample(ctx.pools['pitch'], 20)
    verdicts = classify(ctx.binary, setup.dir / 'no-such-db' / 'db.sqlite', candidates)
    pitch_path = next((c for c in candidates if verdicts.get(str(c), {}).get('verdict') == 'pitch'), None)
    if not out.expect(pitch_path is not None, 'none of 20 sample pitches is called a pitch out of the box'):
        return out.finish()
    pitch = Original(str(pitch_path), pitch_path.read_bytes())
    setup.maildir.deliver_all(originals)
    daemon = setup.daemon(ctx)
    if not start_checked(daemon, setup, out):
        return out.finish(daemon)
    backlog = Progress(setup.maildir)
    deadline = time.monotonic() + 60
    while backlog.count()[1] == 0 and time.monotonic() < deadline and daemon.alive():
        time.sleep(0.05)
    single = choose(ctx.pools, 1, rng)
    delivered = time.monotonic()
    other.deliver_all(single)
    # The backlog counted once the other message is seen: counting it takes a while, and it goes on meanwhile.
    done, when, _, _ = Progress(other).wait(1, 60, poll=0.01, daemon=daemon)
    _, classified = backlog.count()
    print(f'    the other mailbox\'s message classified {"" if done else "not "}{when - delivered:.2f} s after its '
          f'delivery, when {classified} of {n} of the backlog were')
    out.expect(done, 'the other mailbox\'s message was not classified within 60 s')
    out.expect(classified < n, 'the other mailbox\'s message waited for the whole backlog')
    # The other mailbox quarantines from now on.
    configure('quarantine')
    asked = time.monotonic()
    daemon.proc.send_signal(signal.SIGHUP)
    while 'configuration reloaded' not in daemon.log_text() and time.monotonic() - asked < 30 and daemon.alive():
        time.sleep(0.01)
    reloaded = time.monotonic()
    _, classified = backlog.count()
    print(f'    reloaded {reloaded - asked:.2f} s after SIGHUP, when {classified} of {n} of the backlog were classified')
    out.expect(classified < n, 'the reload waited for the whole backlog')
    other.deliver_all([pitch])
    Progress(other).wait(2, 60, poll=0.01, daemon=daemon)
    done, _, total, classified = backlog.wait(n, 120, daemon=daemon)
    out.expect(done, f'the backlog not all classified within 120 s ({classified} of {total})')
    check_sigterm(daemon, out)
    per_folder = verify(setup.maildir, originals, out)
    print(f'    {counts_line(per_folder)}')
    # The pitch in the other mailbox's quarantine, as the reload said: else the verdict does not match its folder.
    verify(other, single + [pitch], out)
    check_tmp_empty(setup.maildir, out)
    check_tmp_empty(other, out)
    return out.finish(daemon)


CHECKS = {'burst': check_burst, 'kill': check_kill, 'moves': check_moves, 'sigterm': check_sigterm_busy,
          'faults': check_faults, 'turns': check_turns}


# ----------------------------------------------------------------------------------------------------------------
# Command line

@dataclasses.dataclass
class Context:
    binary: str
    workdir: Path
    seed: int
    scale: float
    strict_tmp: bool
    pools: dict

    def n(self, count, minimum=10):
        return max(minimum, round(count * self.scale))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('check', choices=[*CHECKS, 'all'], help='which check to run')
    parser.add_argument('--pitchfilter', metavar='PATH', default=None,
                        help='the pitchfilter executable (default: .build/release/pitchfilter in the repository)')
    parser.add_argument('--workdir', metavar='DIR', help='where to put Maildirs, databases and logs '
                        '(default: a fresh directory under /tmp, removed afterwards unless --keep or a failure)')
    parser.add_argument('--keep', action='store_true', help='keep the work directory even if everything passed')
    parser.add_argument('--seed', type=int, default=5, help='seed for choosing messages and kill moments (default 5)')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='multiply message counts and the kill run time by this (e.g. 0.1 for a smoke run; '
                        'the acceptance figures need 1)')
    parser.add_argument('--strict-tmp', action='store_true',
                        help='kill: fail on any file left in tmp/, also partial writes of killed instances')
    return parser.parse_args(argv)


def resolve_binary(given):
    path = Path(given).resolve() if given else REPO / '.build' / 'release' / 'pitchfilter'
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise SystemExit(f'error: no pitchfilter executable at {path} (build it, or pass --pitchfilter PATH)')
    return str(path)


def exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv):
    args = parse_args(argv)
    binary = resolve_binary(args.pitchfilter)
    if args.workdir:
        workdir, made = Path(args.workdir).resolve(), False
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir, made = Path(tempfile.mkdtemp(prefix='pitchfilter-service-check-')), True
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGHUP, exit_on_signal)
    names = list(CHECKS) if args.check == 'all' else [args.check]
    print(f'pitchfilter: {binary}\nwork directory: {workdir}\nseed: {args.seed}, scale: {args.scale}')
    results = {}
    try:
        ctx = Context(binary, workdir, args.seed, args.scale, args.strict_tmp, message_pools())
        for name in names:
            print()
            try:
                results[name] = CHECKS[name](ctx)
            finally:
                kill_leftovers()
    finally:
        kill_leftovers()
    print('\nsummary: ' + ', '.join(f'{k} {"SKIP" if v is None else "PASS" if v else "FAIL"}'
                                    for k, v in results.items()))
    failed = any(v is False for v in results.values())
    if made and not args.keep and not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f'work directory kept: {workdir}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
