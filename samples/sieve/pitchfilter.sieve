# Dovecot Pigeonhole: needs sieve_extprograms with vnd.dovecot.filter enabled and the wrapper script
# samples/sieve/pitchfilter installed in sieve_filter_bin_dir (see dovecot.conf.snippet).
require ["vnd.dovecot.filter", "fileinto", "mailbox"];

filter "pitchfilter";

if header :contains "X-Pitch-Status" "pitch," {
    fileinto :create "Pitches";
}
