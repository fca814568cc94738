import CoreMetrics
import Logging
import PitchMilter
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// The composition root of `pitchfilter serve`: the services, under one ServiceGroup.
///
/// SIGTERM and SIGINT shut down gracefully (the Maildir loop finishes the message in hand, then every service
/// returns and the process exits 0); SIGHUP reloads the configuration.
public enum Daemon {
    public static func run(settings: MaildirService.Settings, logger: Logger) async throws {
        // A stray `kill -USR1` (a log-rotation habit, a monitoring script) ended the service mid-delivery (found by
        // an audit): the two user signals mean nothing to it, from the start.
        signal(SIGUSR1, SIG_IGN)
        signal(SIGUSR2, SIG_IGN)
        var settings = settings
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // Trapped before any service runs, as SIGHUP is below; listened to by `StopOnSignals` alone.
        let stops = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        // Ready for systemd once the Maildir loop watches and the milter and the metrics, if any, listen (found in
        // review: the metrics' port taken, READY=1 came before the service exited 1).
        let startup = SystemdNotifier.Startup(
            notifier: settings.notifier,
            parts: 1 + (settings.configuration.milter == nil ? 0 : 1) + (settings.configuration.metrics == nil ? 0 : 1))
        settings.startup = startup
        // First but for the signals' listener, so that it is the last service to stop and a final scrape sees the
        // whole run; and bootstrapped before anything makes a metric, since one made before would count into nothing.
        if let metrics = settings.configuration.metrics {
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.durationHistogramBuckets[ServiceMetrics.classificationLabel] = ServiceMetrics.classificationBuckets
            MetricsSystem.bootstrap(factory)
            ServiceMetrics.prime()
            services.append(.init(service: MetricsServer(host: metrics.host, port: metrics.port, registry: registry,
                                                         logger: logger, onListening: { startup.ready() })))
        }
        // The milter before the Maildir loop: the group starts services in order and stops them in reverse, so
        // the listener goes after the loop and in-flight MTA sessions are not cut short by the loop's shutdown.
        var milterServer: MilterServer?
        if let milter = settings.configuration.milter {
            var server = MilterServerConfiguration(address: milter.address)
            server.onListening = { startup.ready() }
            server.maximumSessions = milter.maximumSessions
            server.maximumMessageBytes = milter.maximumMessageBytes
            server.maximumBufferedBytes = milter.maximumBufferedBytes
            let filter = MilterFilter(configuration: milter, databasePath: settings.databasePath,
                                      cutoffs: settings.configuration.cutoffs,
                                      reasons: settings.configuration.reasons,
                                      ownFields: settings.configuration.ownFields,
                                      sharedModel: settings.configuration.sharedModel, logger: logger)
            milterServer = MilterServer(configuration: server, handler: filter, logger: logger)
            services.append(.init(service: milterServer!))
            settings.milter = filter  // SIGHUP reaches the Maildir loop, which passes the new settings on
        }
        let maildirs = try MaildirService(settings: settings, logger: logger)
        services.append(.init(service: maildirs))
        // Trapped before any service runs: the Maildir loop tells systemd it is ready, a reload queued while the
        // unit started comes at once, and a SIGHUP not yet trapped ends the process, which systemd counts as a
        // clean exit and does not restart (found in review: 10 of 40 hangups sent as READY=1 came).
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        services.append(.init(service: ReloadOnHangup(hangups: hangups, target: maildirs, logger: logger)))
        services.append(.init(service: MemoryTrimmer()))
        // First: the group stops services in reverse order, so it still listens while the milter waits for its
        // sessions.
        let stopper = StopOnSignals(stops: stops, milter: milterServer, logger: logger)
        services.insert(.init(service: stopper), at: 0)
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        stopper.stops(group)
        try await group.run()
    }
}

/// SIGTERM and SIGINT. The first shuts the group down gracefully; a second ends the milter's wait for sessions in
/// the middle of a message (up to 10 s), as an admin who sends it again means: stop now. The one listener to both
/// (swift-service-lifecycle advises one per signal; the group's own would hear only the first, found in review).
final class StopOnSignals: Service {
    private let signals: UnixSignalsSequence
    private let milter: MilterServer?
    private let logger: Logger
    private let group = Mutex<ServiceGroup?>(nil)

    init(stops signals: UnixSignalsSequence, milter: MilterServer?, logger: Logger) {
        self.signals = signals
        self.milter = milter
        self.logger = logger
    }

    /// The group the first signal stops.
    func stops(_ group: ServiceGroup) {
        self.group.withLock { $0 = group }
    }

    func run() async throws {
        var seen = 0
        // Ends with the group's shutdown of this service, the last to stop.
        for await signal in signals.cancelOnGracefulShutdown() {
            seen += 1
            if seen == 1 {
                await group.withLock { $0 }?.triggerGracefulShutdown()
            } else if seen == 2, let milter {
                logger.notice("\(signal) again: not waiting for the milter's sessions to finish their messages")
                milter.cutSessionsShort()
            }
        }
    }
}

/// Turns SIGHUP into a reload request for the Maildir loop.
struct ReloadOnHangup: Service {
    let hangups: UnixSignalsSequence
    let target: MaildirService
    let logger: Logger

    func run() async throws {
        // cancelOnGracefulShutdown: the sequence never ends by itself.
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading the configuration")
            target.requestReload()
        }
    }
}
