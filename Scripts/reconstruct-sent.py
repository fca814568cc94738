#!/usr/bin/env python3
"""Reconstructs the owners' Sent folder of samples/corpus from the replies that quote it.

    Scripts/reconstruct-sent.py samples/corpus

The corpus was written as received mail only, so its 88 replies answered messages no mailbox had seen, and a
replay of it (the starter model's build, `pitchfilter eval --replay`) taught that an unknown reference is what
ham looks like (the reply signal, since removed) and that the owners wrote to nobody (the relationship signal,
which still needs these). For each ham reply whose In-Reply-To names no message of the corpus and whose quote says the
mailbox's owner wrote the original ("On …, Maya Okafor <maya@…> wrote:", or an Outlook "From: Maya Okafor"
block), this writes that original to sent/r-NNN.eml: from the owner to the replier, with the Message-ID the
reply names, the subject without "Re:", the references before it, and the quoted text as its body. Replies that
quote somebody else's message are left alone: mail whose parent the mailbox never saw is real too.
Existing r-*.eml files are replaced; other files in sent/ are not touched.
"""
import email, email.policy, email.utils, os, re, sys
from datetime import timedelta
from email.message import EmailMessage

# Swedish and Danish "skrev", Polish "pisze" / "napisał(a)", Czech "napsal(a)" besides the western languages.
ATTRIBUTION = re.compile(r"\b(wrote|schrieb|escribió|a écrit|schreef|ha scritto|escreveu|skrev|pisze|napisała?|"
                         r"napsala?)\b(\(a\))?.*:\s*$")
OUTLOOK_FROM = re.compile(r"^(From|Von|De|Van|Da|Från|Fra|Od) ?:\s*(.+)$")
HEADER_LINE = re.compile(r"^(From|Sent|To|Cc|Subject|Date|Von|Gesendet|An|Betreff|De|Enviado|Para|Asunto|Envoyé|À|Objet|"
                         r"Van|Verzonden|Aan|Onderwerp|Da|Inviato|A|Oggetto|Från|Skickat|Till|Ämne|Kopia|Fra|Sendt|"
                         r"Til|Emne|Od|Wysłano|Do|Temat|DW|Odesláno|Komu|Předmět|Kopie) ?:")
SUBJECT_PREFIX = re.compile(r"^\s*((re|aw|sv|fw|fwd|wg)\s*:\s*)+", re.I)


def load(path):
    with open(path, "rb") as f:
        return email.message_from_bytes(f.read(), policy=email.policy.default)


def text_of(message):
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def owner_wrote(line, owner_name, owner_address):
    line = line.lower()
    names = [owner_name.lower()] if owner_name else []
    if len(names) == 1 and " " in names[0]:
        first, last = names[0].rsplit(" ", 1)
        names.append(f"{last}, {first}")  # Outlook's "From: Raman, Priya"
    return bool(owner_address and owner_address.lower() in line) or any(name in line for name in names)


def quoted_original(text, owner_name, owner_address):
    """The body of the message the reply quotes first, or None if that message is not the owner's."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        bare = line.lstrip("> ").rstrip()
        if ATTRIBUTION.search(bare):
            if not owner_wrote(bare, owner_name, owner_address):
                return None
            def level(quoted):
                return len(re.match(r"[> ]*", quoted).group(0).replace(" ", ""))
            # The owner's text is at the quote level of the first line after the attribution: one below it in
            # Gmail's style ("On … wrote:" then "> …"), the same in Apple Mail's ("> On … wrote:" then "> …").
            # Deeper lines are mail the owner quoted in turn.
            following = [l for l in lines[index + 1:] if l.strip(" >")]
            depth = level(following[0]) if following else 0
            body = []
            for quoted in lines[index + 1:]:
                if depth and level(quoted) == depth:
                    body.append(re.sub(r"^( *>){%d} ?" % depth, "", quoted))
            return "\n".join(body).strip()
        match = OUTLOOK_FROM.match(bare)
        if match:
            if not owner_wrote(match.group(2), owner_name, owner_address):
                return None
            rest = [l.lstrip("> ").rstrip() for l in lines[index + 1:]]
            while rest and (HEADER_LINE.match(rest[0]) or not rest[0]):
                rest.pop(0)
            return "\n".join(rest).strip()
    return None


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else "samples/corpus"
    sent = os.path.join(corpus, "sent")
    os.makedirs(sent, exist_ok=True)
    for name in os.listdir(sent):
        if name.startswith("r-") and name.endswith(".eml"):
            os.remove(os.path.join(sent, name))
    known = set()
    messages = []
    for folder in ("ham", "pitch", "sent"):
        directory = os.path.join(corpus, folder)
        # In numeric order (shorter names first), so that ham added later (1000.eml on) gives the next r- numbers
        # and leaves the earlier originals as they were.
        for name in sorted(os.listdir(directory), key=lambda name: (len(name), name)):
            message = load(os.path.join(directory, name))
            if message["Message-ID"]:
                known.add(message["Message-ID"].strip())
            if folder == "ham":
                messages.append((name, message))
    written = skipped = 0
    for name, reply in messages:
        parent = (reply["In-Reply-To"] or "").strip()
        if not parent or parent in known:
            continue
        recipients = reply["To"].addresses if reply["To"] else ()
        if not recipients or not reply["Date"] or not reply["From"] or len(parent.split()) != 1:
            skipped += 1
            continue
        owner = recipients[0]
        body = quoted_original(text_of(reply), owner.display_name, owner.addr_spec)
        if not body:
            skipped += 1
            continue
        date = reply["Date"].datetime - timedelta(hours=20)
        references = (reply["References"] or "").split()
        earlier = references[:references.index(parent)] if parent in references else []
        original = EmailMessage(policy=email.policy.default.clone(linesep="\n", max_line_length=998))
        original["Date"] = email.utils.format_datetime(date)
        original["From"] = owner
        original["To"] = reply["From"].addresses
        original["Subject"] = ("Re: " if earlier else "") + SUBJECT_PREFIX.sub("", str(reply["Subject"] or ""))
        original["Message-ID"] = parent
        if earlier:
            original["In-Reply-To"] = earlier[-1]
            original["References"] = " ".join(earlier)
        original.set_content(body + "\n", cte="8bit")
        written += 1
        with open(os.path.join(sent, f"r-{written:03d}.eml"), "wb") as f:
            f.write(original.as_bytes())
        known.add(parent)
    print(f"wrote {written} originals to {sent}; {skipped} replies quote somebody else, nothing, or lack a header")


if __name__ == "__main__":
    main()
