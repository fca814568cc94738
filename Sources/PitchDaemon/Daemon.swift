import Logging
import ServiceLifecycle
import UnixSignals

/// The composition root of `pitchfilter serve`: the services, under one ServiceGroup.
///
/// SIGTERM and SIGINT shut down gracefully (the Maildir loop finishes the message in hand, then every service
/// returns and the process exits 0); SIGHUP reloads the configuration.
public enum Daemon {
    public static func run(settings: MaildirService.Settings, logger: Logger) async throws {
        let maildirs = try MaildirService(settings: settings, logger: logger)
        let reloader = ReloadOnHangup(target: maildirs, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: maildirs), .init(service: reloader)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

/// Turns SIGHUP into a reload request for the Maildir loop.
struct ReloadOnHangup: Service {
    let target: MaildirService
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        // cancelOnGracefulShutdown: the sequence never ends by itself.
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading the configuration")
            target.requestReload()
        }
    }
}
