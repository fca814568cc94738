#!/usr/bin/env python3
"""What each form-letter signal adds where the words say little: issue 7's ablation, on the pitches it is for.

    python3 Scripts/signal-probe.py [--bin PATH] [--keep DIR] SET...

Scripts/ablation.py leaves each signal out on whole sample sets, where nearly every pitch is flagged by its words
alone, so a signal can only move mean scores there. This asks the other question: for the pitches the embedded
starter model does NOT flag out of the box (`classify` on an empty database: the words say little), give each the
mark of one signal, as a real campaign's copy of it might carry, and score it as the starter model would, with
and without that signal (`eval --as-starter --replay`: samples/corpus trained as the starter model is built, its
sent mail replayed):

- merge-blank: the greeting's name left out ("Hi ,"); merge-placeholder: "Hi {{first_name}},";
- thread: "Re: " before the Subject, no In-Reply-To or References;
- optout: "P.S. If you'd rather not hear from me, just let me know." at the end of a plain-text body;
- bump: a follow-up three days later from the same sender, "Re:" and threaded to the first, that quotes the first
  under "On DATE, NAME wrote:" (the first is classified too);
- template: the same letter from two more senders of other companies, a day apart each (all three classified).

A variant is made only where its edit applies (a greeting to edit; a plain-text body to append to). The ham of the
sets is classified beside each variant as the false-positive guard; it is the same message in every row, so only
its unsure count moves. The table's columns are those of Scripts/ablation.py. Through the real `classify` and
`eval` ($PITCHFILTER or --bin, default .build/release/pitchfilter). SET: sample sets under samples/ (default: the
ten evaluation sets).
"""
import argparse
import datetime
import email
import email.policy
import email.utils
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SETS = ["dev", "blind", "heldout", "fresh", "unseen", "outside", "campaign", "business", "archive", "foreign"]
GREETING = re.compile(rb"^(Hi|Hello|Dear|Hey|Good morning)( [A-Z][\w.'-]*( [A-Z][\w.'-]*)?)?[,:!]", re.M)
OTHER_SENDERS = [("Jordan Ellis", "jordan.ellis", "northpeak-growth.example"),
                 ("Casey Morgan", "casey", "brightlane-partners.example")]


def split(raw):
    """Header and body of a message's bytes, the blank line that ends the header going with the body."""
    ends = [at for at in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if at >= 0]
    return (raw[:min(ends)], raw[min(ends):]) if ends else (raw, b"")


def tag(text):
    """A short name that is the same in every run (Python's own hash of a string is not)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unfolded_fields(header):
    """The header's fields as (name, raw lines) in order."""
    fields = []
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
        else:
            fields.append((line.split(b":", 1)[0].strip().lower(), [line]))
    return fields


def join(fields):
    return b"".join(b"".join(lines) for _, lines in fields)


def newline(header):
    return b"\r\n" if b"\r\n" in header else b"\n"


def replace_field(fields, name, value, eol):
    """Fields with every `name` field removed and one `Name: value` put where the first was (or at the end)."""
    out, placed = [], False
    for field in fields:
        if field[0] == name.lower().encode():
            if not placed:
                out.append((field[0], [name.encode() + b": " + value + eol]))
                placed = True
            continue
        out.append(field)
    if not placed:
        out.append((name.lower().encode(), [name.encode() + b": " + value + eol]))
    return out


def field_value(fields, name):
    for field_name, lines in fields:
        if field_name == name:
            return b"".join(lines).split(b":", 1)[1].strip().decode("utf-8", "replace")
    return None


def is_plain(fields):
    content_type = (field_value(fields, b"content-type") or "text/plain").lower()
    encoding = (field_value(fields, b"content-transfer-encoding") or "7bit").lower()
    return content_type.startswith("text/plain") and encoding in ("7bit", "8bit", "quoted-printable")


def shifted_date(fields, days):
    date = field_value(fields, b"date")
    when = email.utils.parsedate_to_datetime(date) if date else None
    if when is None:
        return None
    return email.utils.format_datetime(when + datetime.timedelta(days=days)).encode()


def variants(name, raw):
    """(signal, file name, bytes) for every variant of one base pitch."""
    header, body = split(raw)
    eol = newline(header)
    fields = unfolded_fields(header)
    made = []
    greeting = GREETING.search(body)
    if greeting:
        word = greeting.group(1)
        made.append(("merge", "blank-" + name, header + body[:greeting.start()] + word + b" ," + body[greeting.end():]))
        made.append(("merge", "placeholder-" + name,
                     header + body[:greeting.start()] + word + b" {{first_name}}," + body[greeting.end():]))
    subject = field_value(fields, b"subject") or ""
    threadless = [f for f in fields if f[0] not in (b"in-reply-to", b"references")]
    made.append(("thread", "thread-" + name,
                 join(replace_field(threadless, "Subject", b"Re: " + subject.encode(), eol)) + body))
    if is_plain(fields):
        text = body.rstrip(b"\r\n")
        line = b"P.S. If you'd rather not hear from me, just let me know."
        made.append(("optout", "optout-" + name, header + text + eol + eol + line + eol))
    bump = follow_up(raw, fields, eol)
    if bump is not None:
        made.append(("bump", "first-" + name, raw))
        made.append(("bump", "bump-" + name, bump))
    made.append(("template", "copy0-" + name, raw))
    for index, (display, local, domain) in enumerate(OTHER_SENDERS, start=1):
        date = shifted_date(fields, index)
        if date is None:
            break
        copy = replace_field(fields, "From", f"{display} <{local}@{domain}>".encode(), eol)
        copy = replace_field(copy, "Date", date, eol)
        copy = replace_field(copy, "Message-ID", f"<probe-{index}-{tag(name)}@{domain}>".encode(), eol)
        renamed = join(copy) + body
        sender = email.utils.parseaddr(field_value(fields, b"from") or "")[0]
        if sender:
            renamed = renamed.replace(sender.encode(), display.encode())
        made.append(("template", f"copy{index}-" + name, renamed))
    return made


def follow_up(raw, fields, eol):
    """The sender's bump of `raw`: three days later, threaded to it, quoting it."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(("plain",))
    if part is None:
        return None
    try:
        text = part.get_content()
    except (LookupError, ValueError):
        return None
    sender_name, sender_address = email.utils.parseaddr(field_value(fields, b"from") or "")
    date, later = field_value(fields, b"date"), shifted_date(fields, 3)
    message_id = field_value(fields, b"message-id")
    if not sender_address or not date or later is None or not message_id:
        return None
    subject = field_value(fields, b"subject") or ""
    to = field_value(fields, b"to") or ""
    first = (email.utils.parseaddr(to)[0] or "there").split(" ")[0]
    signer = sender_name or sender_address
    quoted = "\n".join("> " + line if line else ">" for line in text.rstrip("\n").split("\n"))
    body = (f"Hi {first},\n\nFollowing up on my note below.\n\n{signer}\n\n"
            f"On {date}, {signer} <{sender_address}> wrote:\n{quoted}\n")
    lines = [f"From: {field_value(fields, b'from')}", f"To: {to}", f"Subject: Re: {subject}",
             f"Date: {later.decode()}", f"Message-ID: <bump-{tag(message_id)}@probe.example>",
             f"In-Reply-To: {message_id}", f"References: {message_id}", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    return (eol.join(line.encode() for line in lines) + eol + eol
            + body.replace("\n", eol.decode()).encode("utf-8"))


def run(binary, arguments):
    result = subprocess.run([binary] + arguments, capture_output=True, text=True)
    if result.returncode not in (0, 3):
        sys.exit(f"pitchfilter {arguments[0]} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", default=SETS)
    parser.add_argument("--bin", default=os.environ.get("PITCHFILTER", ".build/release/pitchfilter"))
    parser.add_argument("--keep", help="write the variants here (an empty or new directory) and keep them")
    options = parser.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    binary = os.path.abspath(options.bin)
    work = options.keep or tempfile.mkdtemp(prefix="signal-probe-")
    os.makedirs(work, exist_ok=True)
    try:
        empty = os.path.join(work, "no-database.sqlite")
        pitches, ham = [], []
        for name in options.sets:
            folder = os.path.join(root, "samples", name)
            pitches += [os.path.join(folder, "pitch", f) for f in sorted(os.listdir(os.path.join(folder, "pitch")))]
            ham.append(os.path.join(folder, "ham"))
        base = []
        for start in range(0, len(pitches), 400):
            for line in run(binary, ["classify", "--db", empty] + pitches[start:start + 400]).splitlines():
                verdict, _, path = line.split(" ", 2)
                if verdict != "pitch":
                    base.append(path)
        if os.path.exists(empty):
            os.remove(empty)
        by_signal = {}
        for path in base:
            set_name = os.path.basename(os.path.dirname(os.path.dirname(path)))
            with open(path, "rb") as file:
                raw = file.read()
            for signal, file_name, data in variants(f"{set_name}-{os.path.basename(path)}", raw):
                folder = os.path.join(work, signal)
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, file_name), "wb") as file:
                    file.write(data)
                by_signal[signal] = by_signal.get(signal, 0) + 1
        corpus = os.path.join(root, "samples", "corpus")
        print(f"{len(base)} of {len(pitches)} pitches of {', '.join(options.sets)} not flagged by the starter model "
              f"out of the box; their variants scored as the starter model would, beside the sets' ham\n")
        print("| signal | messages | left out | pitches flagged | pitches unsure | ham flagged | ham unsure "
              "| 1-AUC % | mean pitch | mean ham |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for signal in ["merge", "thread", "optout", "bump", "template"]:
            if signal not in by_signal:
                continue
            for left_out in (None, signal):
                arguments = ["eval", "--json", "--replay", "--as-starter",
                             "--pitch", os.path.join(corpus, "pitch"), "--ham", os.path.join(corpus, "ham"),
                             "--sent", os.path.join(corpus, "sent"),
                             "--test-pitch", os.path.join(work, signal), "--test-ham"] + ham
                if left_out:
                    arguments += ["--without-signal", left_out]
                report = json.loads(run(binary, arguments))
                p, h = report["pitch"], report["ham"]
                print(f"| {signal} | {by_signal[signal]} | {left_out or 'none'} | {p['pitch']} | {p['unsure']} | "
                      f"{h['pitch']} | {h['unsure']} | {report['one_minus_auc_percent']:.4f} | "
                      f"{report['mean_score_pitch']:.4f} | {report['mean_score_ham']:.4f} |", flush=True)
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
