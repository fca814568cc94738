-- A hand test of pitchfilter's milter with OpenDKIM's miltertest (Debian's package `miltertest`):
--   pitchfilter serve --milter inet:127.0.0.1:8891 &
--   miltertest -s samples/postfix/miltertest.lua
-- It sends one cold pitch as Postfix would and prints the X-Pitch-Status field the milter adds. pitchfilter asks
-- the MTA not to send the connection and HELO steps (SMFIP_NOCONNECT, SMFIP_NOHELO), so this script sends none:
-- miltertest's mt.conninfo and mt.helo fail against it, and the script would end there without a word.
local conn = mt.connect("inet:8891@127.0.0.1", 10, 0.5)
if conn == nil then error("cannot connect to pitchfilter's milter at 127.0.0.1:8891") end
mt.macro(conn, SMFIC_MAIL, "i", "HANDTEST1")
mt.mailfrom(conn, "<sam@seller.example>")
mt.rcptto(conn, "<you@example.net>")
mt.header(conn, "From", "Sam Seller <sam@seller.example>")
mt.header(conn, "To", "you@example.net")
mt.header(conn, "Subject", "Quick question")
mt.eoh(conn)
mt.bodystring(conn, "Hi ,\r\n\r\nJust bumping this to the top of your inbox. Do you have 15 minutes this week "
  .. "to talk about your recruiting system?\r\n\r\nBest,\r\nSam\r\n")
mt.eom(conn)
local added = mt.getheader(conn, "X-Pitch-Status", 0)
if added == nil then error("no X-Pitch-Status field was added") end
print("X-Pitch-Status:" .. added)
mt.disconnect(conn)
