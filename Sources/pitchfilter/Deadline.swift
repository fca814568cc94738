import PitchCommandLine
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The last line of defence, from the moment the message is read until it is written: if classification has not
/// finished after the deadline (a database stuck on a network file system, a pathological message), or if it
/// crashes (memory runs out and the Swift runtime aborts, a bug traps, a bad access), a signal handler writes the
/// original message and exits 0, as for any other failure. Without it a crash left the caller nothing but a signal:
/// procmail and Dovecot keep their own copy then, but the contract (one line on standard error, the message
/// unchanged, status 0) did not hold. The handlers use only async-signal-safe calls (write, kill, _exit) on memory
/// allocated before they were armed, and run on a stack of their own, so that a stack overflow can still be handled.
enum Deadline {
    // Unchecked: a debug build's exclusivity checks are runtime calls, no calls for a handler to make. Nothing
    // writes it while a handler that reads it is installed (exitAfter clears it after installing its own).
    @exclusivity(unchecked) nonisolated(unsafe) private static var input: UnsafeBufferPointer<UInt8>?
    /// For a message read only in part (over the size limit): where the handlers copy the rest of standard input
    /// through after `input`, allocated when armed. Nil when the whole message is `input`.
    @exclusivity(unchecked) nonisolated(unsafe) private static var remainderBuffer: UnsafeMutableRawPointer?
    private static let remainderBufferBytes = 64 << 10
    /// Whoever writes the message claims it first: the main thread once classification is done, or a handler. A
    /// fault on another thread while the main one writes must not write the message a second time.
    private static let outputClaimed = Atomic<Bool>(false)
    /// The signals a crash raises: SIGABRT (abort(), as the Swift runtime does when an allocation fails), SIGILL
    /// and SIGTRAP (a Swift trap: a failed precondition, an overflow), SIGSEGV and SIGBUS (a bad access, a stack
    /// overflow), SIGFPE.
    static let faults: [Int32] = [SIGABRT, SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE]
    /// 64 KiB for the handlers; the main thread's own stack may be the one that overflowed.
    private static let handlerStackBytes = 64 << 10

    /// `remainder`: the message goes on past `input` on standard input, which a handler then copies through.
    static func arm(input: UnsafeBufferPointer<UInt8>, seconds: UInt32, remainder: Bool = false) {
        Self.input = input
        Self.remainderBuffer = remainder ? malloc(remainderBufferBytes) : nil
        if remainder, Self.remainderBuffer == nil { exitUnwritten(outOfMemory) }
        _ = Subprocess.running.load(ordering: .relaxed)  // made now: a static's first use is no call for a handler
        _ = outputClaimed.load(ordering: .relaxed)
        if let stack = malloc(handlerStackBytes) {
            var alternate = stack_t(ss_sp: stack, ss_flags: 0, ss_size: handlerStackBytes)
            sigaltstack(&alternate, nil)
        }
        onFaults { fault in Deadline.passThrough(note: Deadline.crashNote(fault)) }
        // A caller may start us with them blocked (the mask is inherited): a fault raised while it is blocked
        // kills at once, handler or not.
        var blocked = sigset_t()
        sigemptyset(&blocked)
        for fault in faults { sigaddset(&blocked, fault) }
        sigprocmask(SIG_UNBLOCK, &blocked, nil)
        install({ _ in Deadline.passThrough(note: "pitchfilter: deadline passed, message passed through unchanged\n") },
                for: SIGALRM)
        setAlarm(seconds)
    }

    /// The line a crash leaves on standard error: constant strings, as a handler may not format one.
    private static func crashNote(_ fault: Int32) -> StaticString {
        switch fault {
        case SIGABRT: "pitchfilter: crashed (SIGABRT) while classifying, message passed through unchanged\n"
        case SIGILL: "pitchfilter: crashed (SIGILL) while classifying, message passed through unchanged\n"
        case SIGTRAP: "pitchfilter: crashed (SIGTRAP) while classifying, message passed through unchanged\n"
        case SIGSEGV: "pitchfilter: crashed (SIGSEGV) while classifying, message passed through unchanged\n"
        case SIGBUS: "pitchfilter: crashed (SIGBUS) while classifying, message passed through unchanged\n"
        default: "pitchfilter: crashed (SIGFPE) while classifying, message passed through unchanged\n"
        }
    }

    /// In a handler: writes the message as it came, says why, and exits 0. Exits 74 if the message cannot be
    /// written, or if the main thread is already writing it (then part of it may be out; the caller keeps its copy).
    /// The other handlers are blocked meanwhile (each one's mask), and the deadline is off: a crash's copy of the
    /// message may take longer to write than the deadline has left, to a slow reader.
    private static func passThrough(note: StaticString) -> Never {
        alarm(0)
        guard outputClaimed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { exitUnwritten(crashedWhileWriting) }
        // A configuration helper still running would be left behind, hung as we were.
        let helper = Subprocess.running.load(ordering: .relaxed)
        if helper > 0 { kill(helper, SIGKILL) }
        if let input = Deadline.input, let base = input.baseAddress {
            var offset = 0
            while offset < input.count {
                let n = write(1, base + offset, input.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK, FileDescriptor.waitUntilWritable(1) { continue }
                    exitUnwritten("pitchfilter: cannot write the message to standard output; exit status 74, so the caller keeps its copy\n")
                }
                offset += n
            }
        }
        if let buffer = Deadline.remainderBuffer { copyRemainder(through: buffer) }
        _ = write(2, note.utf8Start, note.utf8CodeUnitCount)
        _exit(0)
    }

    /// In a handler: the rest of standard input to standard output, read and written with the two calls alone.
    /// Exits 75 (the caller keeps its copy) if standard input fails, 74 if standard output does.
    private static func copyRemainder(through buffer: UnsafeMutableRawPointer) {
        while true {
            let read = Glibc.read(0, buffer, remainderBufferBytes)
            if read == 0 { return }
            if read < 0 {
                if errno == EINTR { continue }
                exitUnwritten(status: 75, "pitchfilter: cannot read the rest of the message; exit status 75, so the caller keeps its copy\n")
            }
            var offset = 0
            while offset < read {
                let n = write(1, buffer + offset, read - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK, FileDescriptor.waitUntilWritable(1) { continue }
                    exitUnwritten("pitchfilter: cannot write the message to standard output; exit status 74, so the caller keeps its copy\n")
                }
                offset += n
            }
        }
    }

    private static var outOfMemory: StaticString {
        "pitchfilter: out of memory before the message was written; exit status 74, so the caller keeps its copy\n"
    }

    /// A constant, not a stored static: a handler must not run a static's first initialisation.
    private static var crashedWhileWriting: StaticString {
        "pitchfilter: crashed while writing the message; exit status 74, so the caller keeps its copy\n"
    }

    private static func exitUnwritten(status: Int32 = 74, _ note: StaticString) -> Never {
        _ = write(2, note.utf8Start, note.utf8CodeUnitCount)
        _exit(status)
    }

    /// After the message is written, nothing is at stake but our own bookkeeping: past the deadline, or on a
    /// crash, just exit 0.
    static func exitAfter(seconds: UInt32) {
        onFaults { _ in _exit(0) }  // first, and without allocating: out of memory may be what comes next
        install({ _ in _exit(0) }, for: SIGALRM)
        Self.input = nil
        setAlarm(seconds)
    }

    /// Installs `handler` for every fault. Allocates nothing: `faults` is made by `arm`, before any of this.
    private static func onFaults(_ handler: @convention(c) (Int32) -> Void) {
        for fault in faults { install(handler, for: fault) }
    }

    /// Installs `handler` for `signal`, on the handlers' own stack, with the deadline and every fault blocked while
    /// it runs: a second one then waits, and a fault raised in the handler itself kills, so that the caller keeps
    /// its copy.
    private static func install(_ handler: @convention(c) (Int32) -> Void, for signal: Int32) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handler
        sigemptyset(&action.sa_mask)
        sigaddset(&action.sa_mask, SIGALRM)
        for fault in faults { sigaddset(&action.sa_mask, fault) }
        // The default action again for the same signal raised in the handler itself (SA_RESETHAND is glibc's
        // 0x80000000, which Swift imports unsigned).
        action.sa_flags = SA_ONSTACK | Int32(bitPattern: UInt32(SA_RESETHAND))
        sigaction(signal, &action, nil)
    }

    /// alarm(2), with SIGALRM unblocked: a caller may start us with it blocked (the mask is inherited), and then
    /// the deadline would never come.
    private static func setAlarm(_ seconds: UInt32) {
        var alarmOnly = sigset_t()
        sigemptyset(&alarmOnly)
        sigaddset(&alarmOnly, SIGALRM)
        sigprocmask(SIG_UNBLOCK, &alarmOnly, nil)
        alarm(seconds)
    }

    /// Classification is over: the main thread writes the message now, and a crash meanwhile exits 74 with a line
    /// (part of the message may be out). If a handler claimed the output first, it is writing the original and
    /// will exit; the main thread waits for that rather than write a second copy.
    static func disarm() {
        alarm(0)
        signal(SIGALRM, SIG_IGN)
        // A crash while writing leaves part of the message out: the caller must keep its copy, and hear why.
        onFaults { _ in Deadline.exitUnwritten(Deadline.crashedWhileWriting) }
        guard outputClaimed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { while true { pause() } }
    }
}
