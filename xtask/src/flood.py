# Slow-header connection flood for `cargo xtask bench` (Python stdlib only, so xtask stays std-only).
# Usage: python3 flood.py HOST:PORT CONNECTIONS SOURCE_IP
# Opens CONNECTIONS connections from SOURCE_IP, each sending a request line and then one header
# line every half second, never ending its head; a connection the server closes is opened again
# (at most once a second per slot), as a persistent attacker would. Prints "ready" once all slots
# were tried, then runs until killed.
import resource, socket, sys, time

host, port = sys.argv[1].rsplit(":", 1)
count, source = int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256) if hard != resource.RLIM_INFINITY else count + 256, hard))

def open_one():
    try:
        s = socket.socket()
        s.bind((source, 0))
        s.connect((host, int(port)))
        s.sendall(b"GET /policy HTTP/1.1\r\nHost: flood\r\n")
        s.setblocking(False)
        return s
    except OSError:
        return None

slots = [[open_one(), time.monotonic()] for _ in range(count)]
print("ready", flush=True)
while True:
    time.sleep(0.5)
    now = time.monotonic()
    for slot in slots:
        s = slot[0]
        if s is not None:
            try:
                if s.recv(1024) == b"":
                    raise OSError("closed")
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                s = slot[0] = None
        if s is not None:
            try:
                s.send(b"X-Slow: 1\r\n")
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                slot[0] = None
        elif now - slot[1] >= 1.0:
            slot[0], slot[1] = open_one(), now
