#!/usr/bin/env bash
# End-to-end test of pitchfilter's milter with a REAL Postfix on loopback.
#
#   bash Scripts/postfix-e2e.sh PITCHFILTER_BINARY        (e.g. .build/debug/pitchfilter)
#
# Starts a private, throwaway Postfix instance (its own config, queue and data directories under a scratch
# directory; the system Postfix and /etc/postfix are neither used nor changed) that listens on 127.0.0.1 only,
# delivers one virtual domain into a Maildir in the scratch directory and bounces everything else to error:,
# with smtpd_milters pointing at `pitchfilter serve --milter inet:127.0.0.1:PORT` (hold_pitches = true,
# subject_tag = "[PITCH]"). Sends 20 held-out ham, 20 held-out pitches, one ham carrying forged X-Pitch-*
# header lines and one whose sender began its Subject with "[PITCH]" under a forged record of that tag over SMTP,
# waits for every message to land in the Maildir or the hold queue, and checks the verdict header, the hold
# queue, the subject tag, and that bodies and original header fields arrive unchanged.
#
# Outbound mail (SMTP AUTH, where pitchfilter learns correspondents instead of classifying) is not exercised:
# it needs a SASL setup; the milter's {auth_authen} handling is covered by the unit tests.
#
# Needs root (Postfix's master runs as root), postfix and python3. Installs postfix with apt-get when it is
# missing and the script runs as root. Env: KEEP=1 keeps the scratch directory; E2E_TIMEOUT (default 60) is
# the delivery wait in seconds.
set -uo pipefail

say() { printf '%s\n' "$*"; }
die() { printf 'postfix-e2e: ERROR: %s\n' "$*" >&2; exit 2; }

[ $# -eq 1 ] || die "usage: $0 PITCHFILTER_BINARY"
BIN=$1
[[ $BIN == */* ]] || BIN=$(command -v "$BIN" || echo "$BIN")
[ -x "$BIN" ] || die "not an executable: $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SAMPLES=$REPO/samples/heldout
[ -d "$SAMPLES/ham" ] && [ -d "$SAMPLES/pitch" ] || die "held-out samples not found under $SAMPLES"
[ "$(id -u)" = 0 ] || die "needs root (Postfix's master runs as root and drops to the postfix user)"
command -v python3 >/dev/null || die "python3 missing"
WAIT=${E2E_TIMEOUT:-60}
T0=$(date +%s)

# ------------------------------------------------------------------------------------------------ postfix
if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
  say "postfix-e2e: postfix is not installed; installing it: apt-get install -y postfix"
  say "postfix-e2e:   (debconf postfix/main_mailer_type = No configuration: no system main.cf is written;"
  say "postfix-e2e:    a temporary /usr/sbin/policy-rc.d keeps the system service from being started)"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  own_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=yes
  fi
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postfix >/dev/null
  rc=$?
  [ "$own_policy" = yes ] && rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || die "apt-get install postfix failed ($rc)"
fi
for c in postfix postconf postqueue postcat; do command -v "$c" >/dev/null || die "$c missing"; done
id postfix >/dev/null 2>&1 || die "user 'postfix' missing"
getent group postdrop >/dev/null || die "group 'postdrop' missing"

# ------------------------------------------------------------------------------------------------ scratch
S=$(mktemp -d /tmp/pitchfilter-postfix-e2e.XXXXXX) || die "mktemp failed"
chmod 755 "$S"                       # the postfix user must reach the queue directory below it
ETC=$S/etc; SPOOL=$S/spool; MAILBASE=$S/mail; DATA=$S/data
MAILDIR=$MAILBASE/inbox/Maildir
PFLOG=$S/postfix.log; PLOG=$S/pitchfilter.log
mkdir -p "$ETC" "$SPOOL" "$DATA" "$MAILBASE" "$S/sent" "$S/held" "$S/home"
chown postfix: "$DATA"
VUID=$(id -u nobody); VGID=$(id -g nobody)
chown "$VUID:$VGID" "$MAILBASE"

PF_PID=""; MASTER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$PF_PID" ] && kill -0 "$PF_PID" 2>/dev/null; then
    kill -TERM "$PF_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$PF_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$PF_PID" 2>/dev/null && { kill -KILL "$PF_PID" 2>/dev/null; say "postfix-e2e: pitchfilter $PF_PID killed"; }
  fi
  if [ -f "$SPOOL/pid/master.pid" ] || [ -n "$MASTER_PID" ]; then
    [ -n "$MASTER_PID" ] || MASTER_PID=$(tr -dc 0-9 < "$SPOOL/pid/master.pid" 2>/dev/null)
    timeout 20 postfix -c "$ETC" stop >/dev/null 2>&1
    if [ -n "$MASTER_PID" ]; then
      for _ in $(seq 1 50); do kill -0 "$MASTER_PID" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$MASTER_PID" 2>/dev/null && { kill -KILL "$MASTER_PID" 2>/dev/null; say "postfix-e2e: postfix master $MASTER_PID killed"; }
    fi
  fi
  if [ "${KEEP:-0}" = 1 ]; then say "postfix-e2e: scratch kept: $S"; else rm -rf "$S"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(0 if s.connect_ex(("127.0.0.1",int(sys.argv[1])))==0 else 1)' "$1"; }
SMTP_PORT=$(free_port); MPORT=$(free_port)
while [ "$MPORT" = "$SMTP_PORT" ]; do MPORT=$(free_port); done

PASS=0; FAIL=0
check() {   # check ok|fail "text"
  if [ "$1" = ok ]; then PASS=$((PASS+1)); say "PASS $2"; else FAIL=$((FAIL+1)); say "FAIL $2"; fi
}

say "postfix-e2e: postfix $(postconf -d -h mail_version 2>/dev/null), pitchfilter $("$BIN" --version 2>/dev/null | head -n 1)"
say "postfix-e2e: scratch $S   smtpd 127.0.0.1:$SMTP_PORT   milter inet:127.0.0.1:$MPORT"

# ------------------------------------------------------------------------------------------------ pitchfilter
cat > "$S/pitchfilter.toml" <<EOF
[milter]
listen = "inet:127.0.0.1:$MPORT"
hold_pitches = true
subject_tag = "[PITCH]"
EOF
HOME=$S/home "$BIN" serve --milter "inet:127.0.0.1:$MPORT" --db "$S/db.sqlite" --config "$S/pitchfilter.toml" \
  > "$PLOG" 2>&1 < /dev/null &
PF_PID=$!
up=no
for _ in $(seq 1 100); do   # <= ~20 s
  kill -0 "$PF_PID" 2>/dev/null || break
  port_open "$MPORT" && { up=yes; break; }
  sleep 0.2
done
if [ "$up" != yes ]; then
  say "--- pitchfilter log:"; tail -n 40 "$PLOG"
  die "pitchfilter serve did not accept connections on 127.0.0.1:$MPORT"
fi
say "postfix-e2e: pitchfilter serve pid $PF_PID is listening"

# ------------------------------------------------------------------------------------------------ private postfix
cat > "$ETC/main.cf" <<EOF
# private Postfix instance of Scripts/postfix-e2e.sh: loopback only, nothing leaves the machine
compatibility_level = 3.6
queue_directory = $SPOOL
data_directory = $DATA
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PFLOG
maillog_file_prefixes = $S
myhostname = mx.e2e.test
mydomain = e2e.test
myorigin = e2e.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
default_transport = error:postfix-e2e: outbound mail disabled
relay_transport = error:postfix-e2e: outbound mail disabled
smtp_dns_support_level = disabled
notify_classes =
biff = no
alias_maps =
alias_database =
# the loopback client is treated like a remote one: no header address rewriting, nothing added
local_header_rewrite_clients =
always_add_missing_headers = no
virtual_mailbox_domains = e2e.test
virtual_mailbox_base = $MAILBASE
virtual_mailbox_maps = texthash:$ETC/vmailbox
virtual_uid_maps = static:$VUID
virtual_gid_maps = static:$VGID
virtual_minimum_uid = 1
message_size_limit = 20480000
smtpd_milters = inet:127.0.0.1:$MPORT
non_smtpd_milters =
milter_default_action = accept
milter_protocol = 6
milter_connect_timeout = 5s
milter_command_timeout = 15s
milter_content_timeout = 30s
EOF
echo "inbox@e2e.test inbox/Maildir/" > "$ETC/vmailbox"
# master.cf: Debian's distributed one, with smtpd on 127.0.0.1:PORT instead of *:25, no chroot (the queue
# directory is private and holds none of the files a chroot needs), and no pipe(8) services for other users.
MASTER_SRC=/usr/share/postfix/master.cf.dist
[ -f "$MASTER_SRC" ] || MASTER_SRC=/etc/postfix/master.cf
awk -v listen="127.0.0.1:$SMTP_PORT" '
  /^[ \t]*#/ || /^[ \t]*$/ { next }
  /^[ \t]/ { if (keep) print; next }                     # continuation lines (-o ..., flags=...)
  {
    keep = 1
    if ($2 == "inet") { if ($1 == "smtp" && !done) { $1 = listen; done = 1 } else { keep = 0; next } }
    if ($8 == "pipe" || $1 == "tlsmgr") { keep = 0; next }
    if ($5 == "y" || $5 == "-") $5 = "n"
    print
  }' "$MASTER_SRC" > "$ETC/master.cf"
grep -q "^127.0.0.1:$SMTP_PORT " "$ETC/master.cf" || die "could not derive master.cf from $MASTER_SRC"

pf_out=$(script -qec "postfix -c '$ETC' check" /dev/null 2>&1); [ -n "$pf_out" ] && say "$pf_out" | sed 's/^/  postfix check: /'
pf_out=$(script -qec "postfix -c '$ETC' start" /dev/null 2>&1); [ -n "$pf_out" ] && say "$pf_out" | sed 's/^/  postfix start: /'
for _ in $(seq 1 100); do port_open "$SMTP_PORT" && break; sleep 0.2; done
MASTER_PID=$(tr -dc 0-9 < "$SPOOL/pid/master.pid" 2>/dev/null)
if ! port_open "$SMTP_PORT"; then
  say "--- postfix log:"; tail -n 30 "$PFLOG" 2>/dev/null
  die "the private postfix did not start"
fi
say "postfix-e2e: postfix master pid $MASTER_PID is listening"

# ------------------------------------------------------------------------------------------------ send
# Writes S/sent/NAME.eml (what was sent, LF line endings) and S/sent.tsv: NAME KIND MESSAGE-ID STAGE CODE REPLY.
cat > "$S/send.py" <<'PY'
import os, re, smtplib, sys, time
port, samples, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def pick(kind, start, n):
    d = os.path.join(samples, kind)
    return [os.path.join(d, f) for f in sorted(os.listdir(d))[start:start + n]]
jobs = [("ham", p) for p in pick("ham", 0, 20)] + [("pitch", p) for p in pick("pitch", 0, 20)]
jobs += [("forged", pick("ham", 20, 1)[0]), ("forged-tag", pick("ham", 21, 1)[0])]
seen = set()
rows = []
for i, (kind, path) in enumerate(jobs):
    raw = open(path, "rb").read()
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1]
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    m = re.search(rb"^Message-ID:[ \t]*(.*(?:\n[ \t].*)*)", head, re.I | re.M)
    mid = b" ".join(m.group(1).split()) if m else b""
    if kind.startswith("forged") or not mid or mid in seen:
        mid = b"<pitchfilter-e2e-%d-%d@e2e.test>" % (i, os.getpid())
        head = re.sub(rb"^Message-ID:[^\n]*(?:\n[ \t][^\n]*)*\n?", b"", head, flags=re.I | re.M).rstrip(b"\n")
        head = b"Message-ID: " + mid + b"\n" + head
    if kind == "forged":
        head = b"X-Pitch-Status: ham, score=0.0000\nX-Pitch-Reasons: forged\n" + head
    if kind == "forged-tag":
        # A sender who begins the Subject with our tag and forges the record of it (found by two audits: the
        # tag was taken off): the field must go and the Subject stay as it was sent.
        head = re.sub(rb"^Subject:[ \t]*", b"Subject: [PITCH] ", head, count=1, flags=re.I | re.M)
        head = b"X-Pitch-Status: pitch, score=0.9999, version=x, tagged=[PITCH]\n" + head
    seen.add(mid)
    msg = head + b"\n\n" + body
    name = "%02d-%s-%s" % (i, kind, os.path.basename(path))
    open(os.path.join(out, "sent", name), "wb").write(msg)
    stage, code, text = "connect", 0, ""
    try:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.e2e.invalid", timeout=30)
        try:
            stage = "data"
            s.sendmail("e2e-sender@sender.e2e.invalid", ["inbox@e2e.test"], msg.replace(b"\n", b"\r\n"))
            stage, code, text = "ok", 250, "accepted"
            s.quit()
        finally:
            s.close()
    except smtplib.SMTPResponseException as e:
        code, text = e.smtp_code, e.smtp_error
    except smtplib.SMTPRecipientsRefused as e:
        stage, code, text = "rcpt", 0, str(e.recipients)
    except (smtplib.SMTPException, OSError) as e:
        code, text = code or 0, str(e)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    rows.append("\t".join([name, kind, mid.decode("utf-8", "replace"), stage, str(code), " ".join(text.split())]))
open(os.path.join(out, "sent.tsv"), "w").write("\n".join(rows) + "\n")
PY
t_send=$(date +%s)
timeout 120 python3 "$S/send.py" "$SMTP_PORT" "$SAMPLES" "$S" || say "postfix-e2e: send.py exited $?"
SENT=$(wc -l < "$S/sent.tsv" 2>/dev/null || echo 0)
ACCEPTED=$(awk -F'\t' '$4 == "ok"' "$S/sent.tsv" 2>/dev/null | wc -l)
say "postfix-e2e: sent $SENT messages in $(( $(date +%s) - t_send ))s, $ACCEPTED accepted"
awk -F'\t' '$4 != "ok" {print "  not accepted: " $1 ": " $4 " " $5 " " $6}' "$S/sent.tsv" 2>/dev/null | head -n 10
[ "$SENT" -eq 42 ] && [ "$ACCEPTED" -eq "$SENT" ] && check ok "smtp: $ACCEPTED of $SENT messages accepted (42 expected)" \
  || check fail "smtp: $ACCEPTED of $SENT messages accepted (42 expected)"

# ------------------------------------------------------------------------------------------------ wait
count_files() { find "$@" -type f 2>/dev/null | wc -l; }
delivered=0; held=0; busy=0; deferred=0
deadline=$(( $(date +%s) + WAIT ))
while :; do
  delivered=$(count_files "$MAILDIR/new" "$MAILDIR/cur")
  held=$(count_files "$SPOOL/hold")
  busy=$(count_files "$SPOOL/maildrop" "$SPOOL/incoming" "$SPOOL/active")
  deferred=$(count_files "$SPOOL/deferred")
  [ $((delivered + held)) -ge "$ACCEPTED" ] && [ "$busy" -eq 0 ] && break
  [ "$(date +%s)" -ge "$deadline" ] && break
  sleep 0.5
done
sleep 0.5   # let a straggling bounce or duplicate show up, if there is one
delivered=$(count_files "$MAILDIR/new" "$MAILDIR/cur"); held=$(count_files "$SPOOL/hold")
busy=$(count_files "$SPOOL/maildrop" "$SPOOL/incoming" "$SPOOL/active"); deferred=$(count_files "$SPOOL/deferred")
line="queue: $delivered delivered + $held held = $((delivered + held)) (accepted $ACCEPTED); in flight $busy, deferred $deferred; waited $(( $(date +%s) - t_send ))s"
[ $((delivered + held)) -eq "$ACCEPTED" ] && [ "$busy" -eq 0 ] && [ "$deferred" -eq 0 ] && check ok "$line" || check fail "$line"

# held messages, exported with postcat (-h header, -b body)
for f in $(find "$SPOOL/hold" -type f 2>/dev/null); do
  id=$(basename "$f")
  timeout 10 postcat -c "$ETC" -hb -q "$id" > "$S/held/$id" 2>/dev/null || say "  postcat -q $id failed"
done
postqueue -c "$ETC" -p 2>/dev/null | grep -E '^[0-9A-F]+!' | head -n 3 | sed 's/^/  postqueue -p (held): /'

# ------------------------------------------------------------------------------------------------ verify
cat > "$S/verify.py" <<'PY'
import os, re, sys
S, maildir = sys.argv[1], sys.argv[2]
TRACE = {b"return-path", b"delivered-to", b"x-original-to"}

def split(raw):
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b"\n" + line)
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append((name.strip().lower(), line))
    return fields, body

def values(fields, name):
    return [b" ".join(l.partition(b":")[2].split()).decode("utf-8", "replace") for n, l in fields if n == name]

def msgid(fields):
    v = values(fields, b"message-id")
    return v[0] if len(v) == 1 else None

def originals(fields):   # header fields minus Postfix trace fields, our own X-Pitch-*, and Postfix's Received
    out = [(n, l) for n, l in fields if n not in TRACE and not n.startswith(b"x-pitch-")]
    if out and out[0][0] == b"received" and b"by mx.e2e.test" in out[0][1]:
        out = out[1:]
    return out

sent = {}
for line in open(os.path.join(S, "sent.tsv")):
    name, kind, mid, stage = line.rstrip("\n").split("\t")[:4]
    fields, body = split(open(os.path.join(S, "sent", name), "rb").read())
    sent[mid] = dict(name=name, kind=kind, ok=stage == "ok", fields=fields, body=body)

got = []   # (where, file, fields, body)
for sub in ("new", "cur"):
    d = os.path.join(maildir, sub)
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        got.append(("delivered", f) + split(open(os.path.join(d, f), "rb").read()))
hd = os.path.join(S, "held")
for f in sorted(os.listdir(hd)):
    got.append(("held", f) + split(open(os.path.join(hd, f), "rb").read()))

results = []
def check(ok, text, details=()):
    results.append((ok, text))
    print(("PASS " if ok else "FAIL ") + text)
    for d in list(details)[:8]:
        print("     " + d)

# 1. every message accounted exactly once, by Message-ID
seen, unknown = {}, []
for where, f, fields, body in got:
    mid = msgid(fields)
    if mid in sent:
        seen.setdefault(mid, []).append((where, f, fields, body))
    else:
        unknown.append("%s %s: Message-ID %r is not one we sent" % (where, f, mid))
accepted = [m for m in sent if sent[m]["ok"]]
missing = [sent[m]["name"] for m in accepted if m not in seen]
dups = ["%s: %d copies (%s)" % (sent[m]["name"], len(v), ", ".join(w for w, *_ in v)) for m, v in seen.items() if len(v) > 1]
check(not missing and not dups and not unknown,
      "accounting: %d accepted, %d found exactly once, %d missing, %d duplicated, %d unknown"
      % (len(accepted), sum(1 for v in seen.values() if len(v) == 1), len(missing), len(dups), len(unknown)),
      ["missing: " + n for n in missing] + dups + unknown)

STATUS = re.compile(r"^(ham|unsure|pitch),.*score=")
def verdict(fields):
    v = values(fields, b"x-pitch-status")
    return v[0].split(",")[0] if len(v) == 1 and STATUS.match(v[0]) else None

n_all = sum(len(v) for v in seen.values())
delivered = [(f, fl, b, m) for m, v in seen.items() for (w, f, fl, b) in v if w == "delivered"]
held = [(f, fl, b, m) for m, v in seen.items() for (w, f, fl, b) in v if w == "held"]

# 2. one well-formed X-Pitch-Status on every delivered message
bad = ["%s: X-Pitch-Status %s" % (sent[m]["name"], values(fl, b"x-pitch-status")) for f, fl, b, m in delivered
       if verdict(fl) is None]
check(not bad, "status header: %d of %d delivered messages carry exactly one X-Pitch-Status "
      "'ham|unsure|pitch, ... score=...'" % (len(delivered) - len(bad), len(delivered)), bad)

# 2b. the field is written the way `pitchfilter filter` writes it (and downstream rules such as procmail's
# "^X-Pitch-Status: pitch" or Sieve's header :contains expect): one space after the colon
# A held pitch's Subject carries the tag, and its status field records it (", tagged=[PITCH]", as `filter` writes
# it); nothing else says tagged.
RAW = re.compile(rb"^X-Pitch-Status: (ham|unsure|pitch), score=[01]\.\d{4}, version=[^\s,]+(, tagged=\[PITCH\])?$")
bad = []
for m, v in seen.items():
    for (w, f, fl, b) in v:
        for n_, l in fl:
            if n_ != b"x-pitch-status":
                continue
            match = RAW.match(l)
            if not match or (match.group(2) is not None) != (w == "held"):
                bad.append("%s (%s): %r" % (sent[m]["name"], w, l[:120]))
check(not bad, "status format: %d of %d messages have 'X-Pitch-Status: VERDICT, score=D.DDDD, version=...' "
      "byte for byte (as `pitchfilter filter` writes it), with ', tagged=[PITCH]' on the held ones only"
      % (n_all - len(bad), n_all), bad)

# 3. bodies unchanged (delivered and held)
bad = ["%s (%s): body differs (%d bytes sent, %d bytes found)" % (sent[m]["name"], w, len(sent[m]["body"]), len(b))
       for m, v in seen.items() for (w, f, fl, b) in v if b.rstrip(b"\n") != sent[m]["body"].rstrip(b"\n")]
n = sum(len(v) for v in seen.values())
check(not bad, "bodies: %d of %d messages byte-identical to what was sent (CRLF->LF, trailing newlines ignored)"
      % (n - len(bad), n), bad)

# 4. original header fields unchanged, in order (held ones: all but Subject)
bad = []
for m, v in seen.items():
    for (w, f, fl, b) in v:
        a = [l for n_, l in originals(sent[m]["fields"])]
        g = [l for n_, l in originals(fl)]
        if w == "held":
            a = [l for l in a if not l.lower().startswith(b"subject:")]
            g = [l for l in g if not l.lower().startswith(b"subject:")]
        if a != g:
            diff = [x.decode("utf-8", "replace")[:90] for x in a if x not in g][:2] + \
                   ["+ " + x.decode("utf-8", "replace")[:90] for x in g if x not in a][:2]
            bad.append("%s (%s): %s" % (sent[m]["name"], w, " | ".join(diff) or "order changed"))
check(not bad, "headers: %d of %d messages keep the sent header fields byte for byte and in order "
      "(besides X-Pitch-*, Postfix trace fields, and Subject when held)" % (n - len(bad), n), bad)

# 5. the forged messages: our status only, forged reasons gone
forged = [m for m in sent if sent[m]["kind"].startswith("forged")]
for m in forged:
    v = seen.get(m, [])
    if len(v) != 1:
        check(False, "forged: %s not found exactly once" % sent[m]["name"]); continue
    w, f, fl, b = v[0]
    st, rs = values(fl, b"x-pitch-status"), values(fl, b"x-pitch-reasons")
    ok = len(st) == 1 and "version=" in st[0] and st[0] not in values(sent[m]["fields"], b"x-pitch-status") \
        and not rs
    check(ok, "forged: %s (%s) has %d X-Pitch-Status %s and %d X-Pitch-Reasons (want 1 with version=, 0)"
          % (sent[m]["name"], w, len(st), st, len(rs)))

# 6. held messages are pitches and tagged
bad = []
for f, fl, b, m in held:
    st, subj = values(fl, b"x-pitch-status"), values(fl, b"subject")
    want = "[PITCH] " + (values(sent[m]["fields"], b"subject") or [""])[0]
    if len(st) != 1 or not st[0].startswith("pitch,") or len(subj) != 1 or subj[0] != want.rstrip():
        bad.append("%s (queue id %s): X-Pitch-Status %s Subject %s" % (sent[m]["name"], f, st, subj))
check(not bad, "hold queue: %d of %d held messages have X-Pitch-Status 'pitch, ...' and Subject '[PITCH] ' + the sent subject"
      % (len(held) - len(bad), len(held)), bad)

# 7. nothing delivered is a pitch, and every delivered Subject is as it was sent
bad = ["%s: %s, Subject %s" % (sent[m]["name"], values(fl, b"x-pitch-status"), values(fl, b"subject"))
       for f, fl, b, m in delivered
       if verdict(fl) == "pitch" or values(fl, b"subject") != values(sent[m]["fields"], b"subject")]
check(not bad, "delivered: %d of %d delivered messages have no pitch verdict and their Subject as sent (a "
      "sender's own [PITCH] under a forged record included)" % (len(delivered) - len(bad), len(delivered)), bad)

# 8. the starter model catches most sample pitches
def tally(kind):
    c = {"held": 0, "pitch": 0, "unsure": 0, "ham": 0, "?": 0}
    for m in sent:
        if sent[m]["kind"] != kind: continue
        for (w, f, fl, b) in seen.get(m, []):
            c["held" if w == "held" else (verdict(fl) or "?")] += 1
    return c
p, h = tally("pitch"), tally("ham")
check(p["held"] >= 10, "pitches held: %d of 20 sample pitches (at least 10 wanted); delivered as unsure %d, ham %d"
      % (p["held"], p["unsure"], p["ham"]))
print("     ham (20): held %d, delivered as unsure %d, ham %d" % (h["held"], h["unsure"], h["ham"]))
with open(os.path.join(S, "verify.counts"), "w") as out:
    out.write("%d %d\n" % (sum(1 for ok, _ in results if ok), sum(1 for ok, _ in results if not ok)))
PY
if timeout 60 python3 "$S/verify.py" "$S" "$MAILDIR"; then :; else say "postfix-e2e: verify.py exited $?"; fi
if read -r vp vf < "$S/verify.counts" 2>/dev/null; then
  PASS=$((PASS + vp)); FAIL=$((FAIL + vf))
else
  check fail "verify: no results from verify.py"
fi

# milter trouble Postfix noticed (with milter_default_action = accept it would otherwise go unseen)
mw=$(grep -iE 'warning:.*milter|milter.*(timeout|error|unreachable)' "$PFLOG" 2>/dev/null | wc -l)
[ "$mw" -eq 0 ] && check ok "postfix log: no milter warnings" || {
  check fail "postfix log: $mw milter warnings"
  grep -iE 'warning:.*milter|milter.*(timeout|error|unreachable)' "$PFLOG" \
    | sed -E 's/^.*postfix\/[a-z]+\[[0-9]+\]: //; s/[0-9A-F]{8,}/QID/g' \
    | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/     /'
}

# pitchfilter: still alive after the run, and stops cleanly on SIGTERM
if kill -0 "$PF_PID" 2>/dev/null; then
  kill -TERM "$PF_PID"
  rc=""
  for _ in $(seq 1 50); do kill -0 "$PF_PID" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$PF_PID" 2>/dev/null; then
    check fail "pitchfilter: still running 10 s after SIGTERM"
  else
    wait "$PF_PID"; rc=$?; PF_PID=""
    [ "$rc" -eq 0 ] && check ok "pitchfilter: ran through the test and exited 0 on SIGTERM" \
      || check fail "pitchfilter: exit status $rc after SIGTERM"
  fi
else
  wait "$PF_PID"; rc=$?; PF_PID=""
  check fail "pitchfilter: died during the test (exit status $rc)"
fi

if [ "$FAIL" -gt 0 ]; then
  say "--- pitchfilter log (last 40 lines):"; tail -n 40 "$PLOG"
  say "--- postfix log (warnings and errors, last 15):"; grep -E 'warning|error|fatal|panic' "$PFLOG" | tail -n 15
fi
say "postfix-e2e: took $(( $(date +%s) - T0 ))s"
say "postfix-e2e: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
