import PitchStore
import Testing

/// `[database] shared_model`: libpq's URL, parsed without Foundation.
struct SharedModelAddressTests {
    @Test(arguments: [
        ("postgresql://pitchfilter@db.example/pitchfilter",
         "postgresql://pitchfilter@db.example:5432/pitchfilter?sslmode=prefer"),
        ("postgres://pf:s%40cret@10.0.0.5:6543/model?sslmode=require",
         "postgresql://pf@10.0.0.5:6543/model?sslmode=require"),
        ("postgresql://pf@[2001:db8::5]:5433/model?sslmode=disable",
         "postgresql://pf@[2001:db8::5]:5433/model?sslmode=disable"),
        ("postgresql://pf@/model?host=/run/postgresql",
         "postgresql://pf@/model (socket /run/postgresql/.s.PGSQL.5432)"),
        ("postgresql://mail%20filter@db.example/shared%2Dmodel",
         "postgresql://mail filter@db.example:5432/shared-model?sslmode=prefer"),
        // libpq's rules for the authorities: a file makes `require` check the chain; `system` means verify-full.
        ("postgresql://pf@db.example/model?sslmode=verify-full&sslrootcert=/etc/pitchfilter/db-ca.crt",
         "postgresql://pf@db.example:5432/model?sslmode=verify-full&sslrootcert=/etc/pitchfilter/db-ca.crt"),
        ("postgresql://pf@db.example/model?sslrootcert=/etc/pitchfilter/db-ca.crt&sslmode=verify-ca",
         "postgresql://pf@db.example:5432/model?sslmode=verify-ca&sslrootcert=/etc/pitchfilter/db-ca.crt"),
        ("postgresql://pf@db.example/model?sslmode=require&sslrootcert=/etc/pitchfilter/db-ca.crt",
         "postgresql://pf@db.example:5432/model?sslmode=verify-ca&sslrootcert=/etc/pitchfilter/db-ca.crt"),
        ("postgresql://pf@db.example/model?sslrootcert=system",
         "postgresql://pf@db.example:5432/model?sslmode=verify-full"),
    ])
    func addressesAreReadAsLibpqReadsThem(text: String, shown: String) throws {
        let address = try SharedModelAddress(parsing: text)
        #expect(address.description == shown)
        #expect(address.text == text)
    }

    @Test func theAuthoritiesAreTheSystemsUnlessAFileIsNamed() throws {
        #expect(try SharedModelAddress(parsing: "postgresql://pf@db.example/model?sslmode=verify-full").authorities
                == .system)
        #expect(try SharedModelAddress(parsing: "postgresql://pf@db.example/model?sslrootcert=system").authorities
                == .system)
        #expect(try SharedModelAddress(parsing: "postgresql://pf@db.example/model?sslmode=verify-full&sslrootcert=/ca.pem")
                .authorities == .file("/ca.pem"))
    }

    @Test func thePasswordIsKeptButNeverShown() throws {
        let address = try SharedModelAddress(parsing: "postgresql://pf:s%40cret@db.example/model")
        #expect(address.password == "s@cret")
        #expect(address.user == "pf")
        #expect(address.endpoint == .tcp(host: "db.example", port: 5432))
        #expect(!address.description.contains("cret"))
    }

    @Test(arguments: [
        ("mysql://pf@db/model", "must start with postgresql://"),
        ("postgresql://pf@db.example", "names no database"),
        ("postgresql://pf@db.example/", "names no database"),
        ("postgresql://db.example/model", "names no user"),
        ("postgresql://pf@/model", "names no host"),
        ("postgresql://pf@db.example:0/model", "\"0\" is not a port number"),
        ("postgresql://pf@db.example:http/model", "\"http\" is not a port number"),
        ("postgresql://pf@db.example/model?sslmode=verify", "sslmode must be disable, prefer, require, verify-ca or"),
        ("postgresql://pf@db.example/model?sslmode=verify-ca", "sslmode=verify-ca needs sslrootcert=FILE"),
        ("postgresql://pf@db.example/model?sslmode=verify-ca&sslrootcert=system", "sslrootcert=system needs sslmode=verify-full"),
        ("postgresql://pf@db.example/model?sslmode=require&sslrootcert=system", "sslrootcert=system needs sslmode=verify-full"),
        ("postgresql://pf@db.example/model?sslmode=verify-full&sslrootcert=db-ca.crt", "sslrootcert must be a certificate file's absolute path"),
        // It would look like a check that never happens.
        ("postgresql://pf@db.example/model?sslmode=prefer&sslrootcert=/ca.pem", "sslrootcert needs sslmode=verify-full, verify-ca or require"),
        ("postgresql://pf@db.example/model?sslrootcert=/ca.pem", "sslrootcert needs sslmode=verify-full, verify-ca or require"),
        ("postgresql://pf@db.example/model?sslrootcert=/ca.pem&sslmode=disable", "sslrootcert needs sslmode=verify-full, verify-ca or require"),
        ("postgresql://pf@db.example:+5432/model", "\"+5432\" is not a port number"),
        ("postgresql://pf@db.example/mo%+f", "has a broken %-escape"),
        ("postgresql://pf:se\ncret@db.example/model", "holds a control character"),
        ("postgresql://pf@db.example/model?options=x", "has an unknown parameter \"options\""),
        ("postgresql://pf@db.example/model?host=/run/postgresql", "names both a host and a socket directory"),
        ("postgresql://pf@db.example/mo%2", "has a broken %-escape"),
        ("postgresql://pf@[::1/model", "has an unclosed ["),
    ])
    func mistakesAreNamed(text: String, problem: String) {
        do {
            _ = try SharedModelAddress(parsing: text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.problem.hasPrefix(problem), "\(error.problem)")
        }
    }

    /// A build without the PostgreSQL trait says so, rather than failing to connect.
    @Test(.enabled(if: !SharedModels.areBuilt, "built with the PostgreSQL trait"))
    func withoutTheTraitTheSharedModelIsRefusedClearly() throws {
        let address = try SharedModelAddress(parsing: "postgresql://pf@db.example/model")
        #expect(throws: StoreError.sharedModelNotBuilt(path: address.description)) {
            _ = try SharedModels.open(address, password: { nil }, tokenizerIdentity: "t", readOnly: true)
        }
    }
}
