"""Disconnect at every stage (and abort/QUIT_NC mid-message) many times with ~0.9 MiB messages; then check the
shared budget (max_buffered_mib=2) was given back: a normal 0.9 MiB message must still be classified."""
import sys, time; sys.path.insert(0, "/tmp/audit-milter")
from mc import *
BIG = PITCH_BODY * (900000 // len(PITCH_BODY))
def run(stop):
    s = connect(); negotiate(s, proto=0x100000)
    if stop == "neg": s.close(); return
    send(s, "M", z("<x@y>")); recv(s)
    if stop == "mail": s.close(); return
    send(s, "R", z("<b@c>")); recv(s)
    send(s, "L", z("Subject", " Re: quick question")); recv(s)
    if stop == "hdr": s.close(); return
    send(s, "N"); recv(s)
    for j in range(0, len(BIG), 65535): send(s, "B", BIG[j:j+65535]); recv(s)
    if stop == "body": s.close(); return
    if stop == "abort": send(s, "A"); time.sleep(0.05); s.close(); return
    if stop == "quitnc": send(s, "K"); time.sleep(0.05); s.close(); return
    if stop == "partial": s.sendall(pkt("B", b"x" * 1000)[:500]); s.close(); return
    send(s, "E")
    if stop == "eom": s.close(); return
    if stop == "eom-abort": send(s, "A"); time.sleep(0.3); s.close(); return
for round in range(5):
    for stop in ("neg", "mail", "hdr", "body", "abort", "quitnc", "partial", "eom", "eom-abort"):
        run(stop)
time.sleep(2)
for i in range(2):
    s = connect(); negotiate(s, proto=0x100000)
    r = fmt(message(s, [("Subject", " Re: quick question")], BIG))
    print("after churn, 0.9 MiB message %d:" % i, "CLASSIFIED" if any("ADDHEADER" in x for x in r) else "NOT classified", r[-1])
    s.close()
