// SHA256_Init/Update/Final are marked deprecated since OpenSSL 3.0 in favour of EVP, but they remain the library's
// own implementation (with its SHA-NI and AVX2 code). EVP's first use initialises the provider machinery and reads
// openssl.cnf, about 0.5 ms: more than hashing a message, in a pipe filter that starts once per message.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
