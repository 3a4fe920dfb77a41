#!/usr/bin/env bash
# `make scan`: Wapiti, a maintained web vulnerability scanner, against the app as `make run` starts it.
#
# Everything runs inside a network namespace of its own that has nothing but loopback, so the
# scan cannot send a single packet off this machine whatever a module tries (Wapiti's ssrf and
# xxe modules call an outside endpoint: they are left out, and --endpoint points at a dead
# loopback port besides). The app gets a throwaway database and a staff account, and the
# scanner a signed-in staff cookie, so the console and the branch counter are scanned too.
# Bounded: --max-scan-time for the whole run, --max-attack-time per module.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--inside" ]]; then
  exec unshare --net -- "$0" --inside
fi
ip link set lo up

PORT="${SCAN_PORT:-5099}"
MINUTES="${SCAN_MINUTES:-10}"
WORK="$(mktemp -d)"
REPORT_DIR="${SCAN_REPORT_DIR:-$PWD/security/last-scan}"
mkdir -p "$REPORT_DIR"
export DATABASE_URL="sqlite:///$WORK/scan.db"
export PASSID_INSTANCE_DIR="$WORK/instance"
SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export SECRET_KEY
# The scanner sends thousands of form posts from one address: let them reach the code under test.
export PASSID_RATE_LIMIT_SESSIONS="100000 per minute" PASSID_RATE_LIMIT_TOKENS="100000 per minute"
export PASSID_RATE_LIMIT_SIGN_IN="100000 per minute" PASSID_SANDBOX_RATE_LIMIT_ONBOARD="100000 per minute"
export PASSID_RATE_LIMIT_SECOND_FACTOR="100000 per minute"
PASSWORD="scan-$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"

cleanup() { [[ -n "${SERVER:-}" ]] && kill -- -"$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

.venv/bin/flask --app app db upgrade >/dev/null 2>&1
.venv/bin/flask --app app staff create scanner --role admin --password "$PASSWORD" >/dev/null
setsid make --no-print-directory run PORT="$PORT" >"$WORK/app.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  curl -fs -m 1 "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.3
done
curl -fs -m 1 "http://127.0.0.1:$PORT/healthz" >/dev/null || { tail -20 "$WORK/app.log"; exit 1; }

# An admin signs in with a second factor (PASSID_STAFF_MFA=admin, the default): the scanner's account enrols an
# authenticator app at its first sign-in, as a person would, with the code computed from the secret shown.
COOKIE="$(.venv/bin/python - "$PORT" "$PASSWORD" <<'PY'
import re, sys, pyotp, requests
base = f"http://127.0.0.1:{sys.argv[1]}"
s = requests.Session()
token = lambda page: re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
page = s.get(f"{base}/staff/sign-in", timeout=5).text
s.post(f"{base}/staff/sign-in", data={"csrf_token": token(page), "username": "scanner", "password": sys.argv[2]},
       timeout=5)
page = s.get(f"{base}/staff/second-factor/app", timeout=5).text
secret = re.search(r"data-totp-secret>([A-Z2-7 ]+)<", page).group(1).replace(" ", "")
s.post(f"{base}/staff/second-factor/app", data={"csrf_token": token(page), "code": pyotp.TOTP(secret).now()},
       timeout=5)
print("; ".join(f"{c.name}={c.value}" for c in s.cookies))
PY
)"

# The signed-in cookie must open the console, or the scan would only see the sign-in page.
curl -fs -m 5 -o /dev/null -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/console/" \
  || { echo "the scanner's staff cookie does not open /console/"; tail -20 "$WORK/app.log"; exit 1; }
# SCAN_SETUP_ONLY=1 stops here, with everything the scanner needs ready: the suite runs that much
# (tests/test_documented_commands.py), so a changed command breaks `make test`, not a user's scan.
if [[ -n "${SCAN_SETUP_ONLY:-}" ]]; then
  echo "Scan setup ready on http://127.0.0.1:$PORT/ (signed in as staff); the scanner was not started."
  exit 0
fi

# Left out: ssrf, xxe, log4shell, spring4shell (they call an outside endpoint), wapp, cms, nikto, takeover,
# network_device (fingerprint databases fetched from outside), ssl and https_redirect (no TLS on loopback),
# buster, backup, brute_login_form (brute force, not a finding about this code).
MODULES="cookieflags,crlf,csp,csrf,exec,file,htaccess,http_headers,ldap,methods,permanentxss,redirect,shellshock,sql,timesql,upload,xss"
echo "Scanning http://127.0.0.1:$PORT/ for up to $MINUTES minutes (modules: $MODULES)"
.venv-scan/bin/wapiti -u "http://127.0.0.1:$PORT/" --scope folder \
  -s "http://127.0.0.1:$PORT/verify" -s "http://127.0.0.1:$PORT/branch/" -s "http://127.0.0.1:$PORT/console/" \
  -s "http://127.0.0.1:$PORT/console/go-live" -s "http://127.0.0.1:$PORT/sandbox/phone" \
  -s "http://127.0.0.1:$PORT/sandbox/phone/share" -s "http://127.0.0.1:$PORT/staff/sign-in" \
  -s "http://127.0.0.1:$PORT/staff/account" \
  -x "http://127.0.0.1:$PORT/staff/sign-out" -x "http://127.0.0.1:$PORT/staff/sign-in/cancel" \
  -H "Cookie: $COOKIE" -m "$MODULES" \
  --endpoint "http://127.0.0.1:9/" --dns-endpoint 127.0.0.1 --no-bugreport --flush-session --store-session "$WORK/session" \
  --max-scan-time "$((MINUTES * 60))" --max-attack-time 60 -t 10 --tasks 4 \
  -f txt -o "$REPORT_DIR/report.txt" -v 1 >"$WORK/wapiti.log" 2>&1 || { tail -30 "$WORK/wapiti.log"; exit 1; }
# The report's findings, without the banner.
sed -n '/^Summary of vulnerabilities/,$p' "$REPORT_DIR/report.txt"
echo "Full report: $REPORT_DIR/report.txt"
