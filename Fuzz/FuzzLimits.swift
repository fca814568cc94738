// Compiled into every fuzz target by Fuzz/run.sh.

extension Limits {
    /// Small limits make the fuzzer reach every limit path with small inputs.
    static var fuzzing: Limits {
        var limits = Limits()
        limits.maxAnalysisBytes = 1 << 16
        limits.maxHeaderFields = 64
        limits.maxHeaderBytes = 4096
        limits.maxDepth = 8
        limits.maxParts = 64
        limits.maxDecodedTextBytes = 4096
        limits.maxFieldValueBytes = 512
        return limits
    }
}
