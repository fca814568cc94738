import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Per-message work on every core, results in input order.
///
/// Classifying, training and evaluating are independent per message until the results are written, so a batch is
/// spread over one worker per core and its results come back in order; only the caller's writing is sequential.
enum Parallel {
    static let workers = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    static func map<Element, Result>(_ elements: [Element], _ transform: (Element) -> Result) -> [Result] {
        guard workers > 1, elements.count > 1 else { return elements.map(transform) }
        return withoutActuallyEscaping(transform) { transform in
            let results = UnsafeMutableBufferPointer<Result?>.allocate(capacity: elements.count)
            results.initialize(repeating: nil)
            defer {
                // The results hold arrays (tokens, evidence): without this every message of a run stayed in memory.
                results.deinitialize()
                results.deallocate()
            }
            let next = Atomic<Int>(0)
            // Workers take the next index from a shared counter, so one slow message does not idle the others.
            let shared = Unchecked((elements, transform, results))
            DispatchQueue.concurrentPerform(iterations: min(workers, elements.count)) { _ in
                let (elements, transform, results) = shared.value
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < elements.count else { return }
                    results[index] = transform(elements[index])
                }
            }
            return results.map { $0! }
        }
    }
}

/// Hands values to the workers of `Parallel.map`: each result slot is written by exactly one worker and read only
/// after all of them have finished, which the type system cannot see.
private struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
