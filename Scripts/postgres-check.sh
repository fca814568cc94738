#!/bin/bash
# The shared model (`[database] shared_model`) against a real PostgreSQL server.
#
# Installs Debian's server if it is missing, starts a throwaway cluster on loopback (as the postgres user when run
# as root: PostgreSQL refuses to run as root), builds with the PostgreSQL trait into .build-postgres, runs the
# store tests against it (the conformance suite gains the `postgres` and `sqliteWithSharedModel` kinds), then
# plays several mail hosts sharing one model through the command line. The cluster is stopped and removed at the
# end, whatever happens. Not part of .ci/run: postgres-nio and its TLS and crypto libraries add minutes to a build.
#
#     bash Scripts/postgres-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v strace >/dev/null; then
    apt-get update -q && apt-get install -y -q postgresql strace
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
port=${PITCHFILTER_TEST_PGPORT:-54329}
work=$(mktemp -d /tmp/pitchfilter-pg.XXXXXX)
# The server's files in a directory of postgres's own; $work stays this user's, since the configuration files in it
# must be changeable by no one else (pitchfilter refuses one in another user's directory under /tmp).
chmod 755 "$work"
pg="$work/pg"
mkdir "$pg"
as_postgres=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$pg"
    as_postgres=(runuser -u postgres --)
fi
# Over TCP with a password (SCRAM), as a host reaching a shared server would; the admin over the unix socket.
"${as_postgres[@]}" "$pgbin/initdb" -D "$pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    >/dev/null
# TLS as a site with its own authority has it: a server certificate for "localhost" signed by a private CA, and
# another CA that signed nothing of this server's.
tls="$work/tls"
mkdir "$tls"
for ca in ca other-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pitchfilter test $ca" \
        -keyout "$tls/$ca.key" -out "$tls/$ca.crt" 2>/dev/null
done
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' >"$tls/server.ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
    -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
chmod 600 "$tls/server.key"
[ ${#as_postgres[@]} = 0 ] || chown -R postgres: "$tls"
server_options="-p $port -k $pg -c listen_addresses=127.0.0.1 -c log_connections=on -c log_disconnections=on"
server_options+=" -c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key"
"${as_postgres[@]}" "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -o "$server_options" start >/dev/null
# Set before the trap, which reads them (set -u).
silent=
serve=
finished=
# The service's Maildir lies in a directory of its own, outside postgres's: run as root, the service works in a
# Maildir as whoever alone can change the way to it, and refuses one under another user's private directory.
mail=$(mktemp -d /tmp/pitchfilter-pg-mail.XXXXXX)
chmod 755 "$mail"
# Whatever happens: the service and the silent server stopped, the cluster stopped and removed, and a run that
# ended early says so (set -e would otherwise end it without a word, the service left running).
trap 'status=$?; kill $serve $silent 2>/dev/null || true
      "${as_postgres[@]}" "$pgbin/pg_ctl" -D "$pg/data" -m fast stop >/dev/null 2>&1 || true
      [ -n "$finished" ] || { echo "postgres-check: stopped early (exit $status)"; cat "$mail/serve.log" 2>/dev/null; }
      rm -rf "$work" "$mail"' EXIT
admin=(psql -h "$pg" -p "$port" -U postgres -q)
password=pitch-test-$RANDOM$RANDOM
"${admin[@]}" -c "CREATE ROLE pitchtest LOGIN CREATEDB PASSWORD '$password'"
# psql, which the tests use to make their databases, reads it from here.
export PGPASSWORD=$password

swift build --build-tests --traits PostgreSQL --scratch-path .build-postgres
PITCHFILTER_TEST_POSTGRES="postgresql://pitchtest:$password@127.0.0.1:$port" \
    swift test --skip-build --traits PostgreSQL --scratch-path .build-postgres --filter PitchStoreTests

# Several hosts, one model. Host A and host B share it; host C keeps its own SQLite model, trained the same way
# as A, so A and C must agree on every score.
bin=.build-postgres/debug/pitchfilter
"${admin[@]}" -c "CREATE DATABASE shared OWNER pitchtest"
printf '%s\n' "$password" > "$work/password"
chmod 600 "$work/password"
cat > "$work/shared.toml" <<EOF
[database]
shared_model = "postgresql://pitchtest@127.0.0.1:$port/shared?sslmode=disable"
shared_model_password_file = "$work/password"
EOF
shared=(env PITCHFILTER_CONFIG="$work/shared.toml" HOME="$work/home-shared")
alone=(env -u PITCHFILTER_CONFIG HOME="$work/home-alone")
failures=0
check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "PASS $1"; else echo "FAIL $1: expected [$2], got [$3]"; failures=$((failures + 1)); fi
}
train_dev=(train --pitch samples/dev/pitch --ham samples/dev/ham)
"${shared[@]}" "$bin" "${train_dev[@]}" --db "$work/a.sqlite" >"$work/train-a.txt"
"${alone[@]}" "$bin" "${train_dev[@]}" --db "$work/c.sqlite" >"$work/train-c.txt"
check "host A learned the dev set" "$(cat "$work/train-c.txt")" "$(cat "$work/train-a.txt")"
check "the model is in PostgreSQL, not in A's file" "0" "$(sqlite3 "$work/a.sqlite" 'SELECT count(*) FROM tokens')"
check "PostgreSQL holds the tokens" "$(sqlite3 "$work/c.sqlite" 'SELECT count(*) FROM tokens')" \
    "$("${admin[@]}" -d shared -At -c 'SELECT count(*) FROM pitchfilter_tokens')"

"${shared[@]}" "$bin" classify --db "$work/a.sqlite" samples/heldout/pitch samples/heldout/ham >"$work/classify-a.txt" || true
"${alone[@]}" "$bin" classify --db "$work/c.sqlite" samples/heldout/pitch samples/heldout/ham >"$work/classify-c.txt" || true
check "A (shared model) and C (own model) give every held-out message the same score" \
    "$(md5sum <"$work/classify-c.txt")" "$(md5sum <"$work/classify-a.txt")"
check "200 held-out messages classified" "200" "$(wc -l <"$work/classify-a.txt" | tr -d ' ')"
# Training measured its agreement with the starter model over the shared counts and kept it there, so A scores
# with the same settings as C; host B, which trained nothing, reads the figure too.
agreement_c=$("${alone[@]}" "$bin" stats --db "$work/c.sqlite" | grep '^agreement with the starter model:')
check "the training agrees with the starter model" "1" "$(grep -c 'settings for pitches against business mail' <<<"$agreement_c")"
check "the shared model keeps the agreement its training measured" "$agreement_c" \
    "$("${shared[@]}" "$bin" stats --db "$work/b-stats.sqlite" | grep '^agreement with the starter model:')"

# Host B has no database of its own yet: it classifies with the shared model, and its training counts once.
starter=$("${alone[@]}" "$bin" classify --db "$work/none.sqlite" samples/heldout/pitch/h-p-001.eml)
from_shared=$("${shared[@]}" "$bin" classify --db "$work/b.sqlite" samples/heldout/pitch/h-p-001.eml)
check "host B without a database reads the shared model" "$(grep h-p-001 "$work/classify-a.txt")" "$from_shared"
echo "     (the starter model alone: $starter)"
check "host B without a database shows the shared model's figures" "messages: pitch 105, ham 105" \
    "$("${shared[@]}" "$bin" stats --db "$work/b.sqlite" | grep '^messages:')"
check "host B learning the same messages again changes nothing" \
    "learned 0, already known 210, moved 0, forgotten 0, not known 0" \
    "$("${shared[@]}" "$bin" "${train_dev[@]}" --db "$work/b.sqlite" | tail -1)"
check "a move on host B is seen by host A" "learned 0, already known 0, moved 1, forgotten 0, not known 0" \
    "$("${shared[@]}" "$bin" train --db "$work/b.sqlite" --ham samples/dev/pitch/d1-p-001.eml)"
check "host A's statistics" "messages: pitch 104, ham 106" \
    "$("${shared[@]}" "$bin" stats --db "$work/a.sqlite" | grep '^messages:')"

# The Maildir service on a shared host: a pitch delivered to the INBOX is quarantined with the shared model's
# score, and the user moving it back teaches the shared model (host A sees the ham count go up).
maildir="$mail/Maildir"
mkdir -p "$maildir"/{tmp,new,cur}
"${shared[@]}" .build-postgres/debug/pitchfilter-service serve --config "$work/shared.toml" \
    --db "$work/service.sqlite" --maildir "$maildir" >"$mail/serve.log" 2>&1 &
serve=$!
sleep 2
pitch=samples/heldout/pitch/h-p-003.eml
cp "$pitch" "$maildir/tmp/1.M1P1.host" && mv "$maildir/tmp/1.M1P1.host" "$maildir/new/1.M1P1.host"
for _ in $(seq 1 50); do ls "$maildir/.Pitches/new" 2>/dev/null | grep -q . && break; sleep 0.2; done
held=$(ls "$maildir/.Pitches/new" 2>/dev/null | head -1 || true)
expected_score=$(grep "h-p-003" "$work/classify-a.txt" | awk '{print $2}')
check "the service quarantines with the shared model's score" "X-Pitch-Status: pitch, score=$expected_score" \
    "$(head -1 "$maildir/.Pitches/new/$held" 2>/dev/null | cut -d, -f1-2)"
mv "$maildir/.Pitches/new/$held" "$maildir/new/$held"
for _ in $(seq 1 50); do
    grep -q "ham 107" <("${shared[@]}" "$bin" stats --db "$work/a.sqlite") && break; sleep 0.2
done
check "moving it back teaches the shared model" "messages: pitch 104, ham 107" \
    "$("${shared[@]}" "$bin" stats --db "$work/a.sqlite" | grep '^messages:')"
kill -TERM "$serve"; wait "$serve" || true

# TLS with the site's own authority: the certificate must be signed by the CA given in sslrootcert, and with
# verify-full name the host. A connection that fails these shows in `stats`, which then cannot read the model.
log_lines=$(wc -l <"$pg/server.log")
tls_stats() {  # tls_stats HOST QUERY: stats' "messages:" line through that connection, or "failed"
    printf '[database]\nshared_model = "postgresql://pitchtest@%s:%s/shared?%s"\nshared_model_password_file = "%s"\n' \
        "$1" "$port" "$2" "$work/password" >"$work/tls.toml"
    PITCHFILTER_CONFIG="$work/tls.toml" HOME="$work/home-tls" "$bin" stats --db "$work/none-tls.sqlite" \
        2>"$work/tls-err.txt" | grep '^messages:' || echo failed
}
check "verify-full with the site's CA, host named in the certificate" "messages: pitch 104, ham 107" \
    "$(tls_stats localhost "sslmode=verify-full&sslrootcert=$tls/ca.crt")"
check "verify-full refuses a host the certificate does not name" "failed" \
    "$(tls_stats 127.0.0.1 "sslmode=verify-full&sslrootcert=$tls/ca.crt")"
check "verify-ca takes the CA's certificate for any host name" "messages: pitch 104, ham 107" \
    "$(tls_stats 127.0.0.1 "sslmode=verify-ca&sslrootcert=$tls/ca.crt")"
check "require with a CA file checks the chain, as libpq's does" "failed" \
    "$(tls_stats 127.0.0.1 "sslmode=require&sslrootcert=$tls/other-ca.crt")"
check "require with a CA file checks the chain only, not the name (verify-ca)" "messages: pitch 104, ham 107" \
    "$(tls_stats 127.0.0.1 "sslmode=require&sslrootcert=$tls/ca.crt")"
check "a CA file that is not there fails the connection (libpq would go on unchecked)" "failed" \
    "$(tls_stats 127.0.0.1 "sslmode=require&sslrootcert=$tls/missing.crt")"
check "... and says which file" "yes" "$(grep -q "cannot read sslrootcert $tls/missing.crt" "$work/tls-err.txt" \
    && echo yes || head -1 "$work/tls-err.txt")"
check "verify-full refuses a certificate another CA signed" "failed" \
    "$(tls_stats localhost "sslmode=verify-full&sslrootcert=$tls/other-ca.crt")"
echo "     (standard error: $(head -1 "$work/tls-err.txt" | cut -c1-200))"
check "verify-full refuses a private CA's certificate against the system's authorities" "failed" \
    "$(tls_stats localhost "sslmode=verify-full")"
check "require encrypts without checking (Debian's self-signed certificate)" "messages: pitch 104, ham 107" \
    "$(tls_stats 127.0.0.1 "sslmode=require")"
check "the four accepted connections were encrypted (the server's log)" "4" \
    "$(tail -n +$((log_lines + 1)) "$pg/server.log" | grep "connection authorized: user=pitchtest" \
        | grep -c "SSL enabled" || true)"

# Each pipe-filter run is a connection; the filter ends it with a goodbye, so the server logs no dropped
# connection (which it reports at debug1 when the client just goes away), over plain TCP and over TLS, with a
# database of its own and without.
"${admin[@]}" -c "ALTER SYSTEM SET log_min_messages = debug1" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
check "the server logs at debug1 now" "debug1" "$("${admin[@]}" -At -c "SHOW log_min_messages")"
printf '[database]\nshared_model = "postgresql://pitchtest@127.0.0.1:%s/shared?sslmode=require"\n%s\n' "$port" \
    "shared_model_password_file = \"$work/password\"" >"$work/tls-filter.toml"
log_lines=$(wc -l <"$pg/server.log")
for config in shared.toml tls-filter.toml; do
    for _ in 1 2; do
        for db in a.sqlite no-database-here.sqlite; do
            PITCHFILTER_CONFIG="$work/$config" HOME="$work/home-shared" "$bin" filter --db "$work/$db" \
                <samples/heldout/ham/h-h-001.eml >/dev/null
        done
    done
done
sleep 0.5
since_runs() { tail -n +$((log_lines + 1)) "$pg/server.log"; }
check "eight pipe-filter runs: no connection dropped without a goodbye" "0" \
    "$(since_runs | grep -c "unexpected EOF on client connection\|could not receive data\|SSL error" || true)"
check "eight pipe-filter runs: eight connections ended, four of them TLS" "8 4" \
    "$(since_runs | grep -c "disconnection: session time" || true) $(since_runs | grep -c "SSL enabled" || true)"
"${admin[@]}" -c "ALTER SYSTEM RESET log_min_messages" -c "SELECT pg_reload_conf()" >/dev/null
# The goodbye comes after the message is out, also where the store is gone before it (no database here).
strace -f -e trace=write,close -o "$work/goodbye.strace" "${shared[@]}" "$bin" filter \
    --db "$work/no-database-here.sqlite" <samples/heldout/ham/h-h-001.eml >/dev/null
check "the message is out before the goodbye" "yes" "$(awk '
    /close\(1\)/ && !out { out = NR }
    /write\([0-9]+, "X\\0\\0\\0\\4"/ && !bye { bye = NR }
    END { print (out && bye && out < bye) ? "yes" : "no (stdout closed at line " out ", Terminate at " bye ")" }
    ' "$work/goodbye.strace")"

# The pipe filter on a shared host: tagged from the shared model; with a server that takes the connection and
# never answers, and with the server gone, the message goes through unchanged and the exit status is 0.
message=samples/heldout/pitch/h-p-002.eml
"${shared[@]}" "$bin" filter --db "$work/a.sqlite" <"$message" >"$work/tagged.eml"
tagged=$(head -1 "$work/tagged.eml")
check "the pipe filter tags from the shared model" "X-Pitch-Status: pitch" "${tagged%%,*}"
check "a wrong password is refused and the mail goes through" "$(md5sum <"$message")" \
    "$(sed "s|^shared_model_password_file = .*|shared_model_password_file = \"$work/wrong\"|" "$work/shared.toml" \
        >"$work/wrong.toml"; echo wrong >"$work/wrong"; PITCHFILTER_CONFIG="$work/wrong.toml" HOME="$work/home-wrong" \
        "$bin" filter --db "$work/a.sqlite" <"$message" 2>/dev/null | md5sum)"
silent_port=$((port + 1))
python3 -c "import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $silent_port)); s.listen(16); time.sleep(60)" &
silent=$!
sleep 0.5
sed "s|127.0.0.1:$port|127.0.0.1:$silent_port|" "$work/shared.toml" >"$work/silent.toml"
started=$(date +%s%N)
set +e
PITCHFILTER_CONFIG="$work/silent.toml" HOME="$work/home-silent" "$bin" filter --db "$work/a.sqlite" <"$message" \
    >"$work/out-silent.eml" 2>"$work/err-silent.txt"
status=$?
set -e
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
check "a server that never answers: exit 0" "0" "$status"
check "a server that never answers: the message unchanged" "$(md5sum <"$message")" "$(md5sum <"$work/out-silent.eml")"
check "a server that never answers: out within the filter's 5 s" "yes" "$([ "$elapsed" -lt 5000 ] && echo yes || echo "no ($elapsed ms)")"
echo "     ($elapsed ms; standard error: $(head -1 "$work/err-silent.txt" | cut -c1-160))"
kill $silent 2>/dev/null || true
"${as_postgres[@]}" "$pgbin/pg_ctl" -D "$pg/data" -m fast stop >/dev/null
set +e
"${shared[@]}" "$bin" filter --db "$work/a.sqlite" <"$message" >"$work/out.eml" 2>"$work/err.txt"
status=$?
set -e
check "with the server down the filter exits 0" "0" "$status"
check "with the server down the message goes through unchanged" "$(md5sum <"$message")" "$(md5sum <"$work/out.eml")"
echo "     (standard error: $(head -1 "$work/err.txt"))"

finished=yes
if [ "$failures" -gt 0 ]; then
    echo "postgres-check: $failures failed"
    exit 1
fi
echo "postgres-check: all passed"
