//! A minimal blocking HTTP/1.1 client over `TcpStream`, just enough for the benchmarks:
//! keep-alive requests, a body streamed from one reused buffer, `Content-Length` and chunked
//! responses. Not a general client.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// A request body.
pub enum Body<'a> {
    /// No body (no `Content-Length` unless the method carries one).
    Empty,
    /// `len` bytes taken cyclically from `buf`, starting at `buf[start % buf.len()]`, so a
    /// multi-GiB body is sent from one buffer filled once.
    Repeat { buf: &'a [u8], start: u64, len: u64 },
    /// `head`, then `len` bytes as in `Repeat` (from the start of `buf`), then `tail`: a
    /// multipart form around one big file part.
    Framed { head: &'a [u8], buf: &'a [u8], len: u64, tail: &'a [u8] },
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Repeat { len, .. } => *len,
            Body::Framed { head, len, tail, .. } => head.len() as u64 + len + tail.len() as u64,
        }
    }
}

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (empty for HEAD, 204, 304).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A one-line description for errors: status, and the body if it is short text.
    pub fn summary(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(300).collect();
        format!("{} {}", self.status, body.trim())
    }
}

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    host: String,
    /// Bytes read past the end of the previous response.
    pending: Vec<u8>,
}

impl Conn {
    /// Connects to `addr` (`HOST:PORT`).
    pub fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, host: addr.to_string(), pending: Vec::new() })
    }

    /// Sends one request and reads its response. When the server answers before the body is
    /// sent in full (an early refusal) and closes, the write error is swallowed and that answer
    /// returned, so a caller sees e.g. `413` rather than a broken pipe.
    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if body.len() > 0 || matches!(method, "POST" | "PUT" | "PATCH") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let sent = self.stream.write_all(head.as_bytes()).and_then(|()| self.write_body(&body));
        match (sent, self.read_response(method == "HEAD")) {
            (_, Ok(resp)) => Ok(resp),
            (Err(write_err), Err(_)) => Err(write_err),
            (Ok(()), Err(read_err)) => Err(read_err),
        }
    }

    fn write_body(&mut self, body: &Body) -> io::Result<()> {
        let (buf, start, len) = match *body {
            Body::Empty => return Ok(()),
            Body::Repeat { buf, start, len } => (buf, start, len),
            Body::Framed { head, buf, len, tail } => {
                self.stream.write_all(head)?;
                self.write_body(&Body::Repeat { buf, start: 0, len })?;
                return self.stream.write_all(tail);
            }
        };
        if buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty body buffer"));
        }
        let mut pos = (start % buf.len() as u64) as usize;
        let mut left = len;
        while left > 0 {
            let n = (buf.len() - pos).min(usize::try_from(left).unwrap_or(usize::MAX));
            self.stream.write_all(&buf[pos..pos + n])?;
            left -= n as u64;
            pos = (pos + n) % buf.len();
        }
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let end = loop {
            if let Some(i) = find(&self.pending, b"\r\n\r\n") {
                break i;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
        self.pending.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut resp = Response { status, headers, body: Vec::new() };
        if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(resp);
        }
        if resp.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            resp.body = self.read_chunked()?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().map_err(|_| invalid(format!("bad content-length {len:?}")))?;
            while self.pending.len() < len {
                self.fill()?;
            }
            resp.body = self.pending.drain(..len).collect();
        } else {
            // Close-delimited.
            loop {
                match self.fill() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            resp.body = std::mem::take(&mut self.pending);
        }
        Ok(resp)
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.pending, b"\r\n") {
                    break i;
                }
                self.fill()?;
            };
            let size_text = String::from_utf8_lossy(&self.pending[..line_end]).into_owned();
            let size_hex = size_text.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size_hex, 16).map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            self.pending.drain(..line_end + 2);
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                loop {
                    if let Some(i) = find(&self.pending, b"\r\n") {
                        let empty = i == 0;
                        self.pending.drain(..i + 2);
                        if empty {
                            return Ok(body);
                        }
                    } else {
                        self.fill()?;
                    }
                }
            }
            while self.pending.len() < size + 2 {
                self.fill()?;
            }
            body.extend(self.pending.drain(..size));
            self.pending.drain(..2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A buffer of `len` pseudo-random bytes (xorshift64*), so bodies do not compress or sniff as
/// a known type.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves `replies` in order on one connection, recording each request head.
    fn serve(replies: Vec<&'static str>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut heads = Vec::new();
            let mut buf = Vec::new();
            for reply in replies {
                let end = loop {
                    if let Some(i) = find(&buf, b"\r\n\r\n") {
                        break i;
                    }
                    let mut chunk = [0u8; 4096];
                    let n = s.read(&mut chunk).unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map(|v| v.parse().unwrap())
                    .unwrap_or(0);
                while buf.len() < len {
                    let mut chunk = [0u8; 4096];
                    let n = s.read(&mut chunk).unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                buf.drain(..len);
                heads.push(head);
                s.write_all(reply.as_bytes()).unwrap();
            }
            heads
        });
        (addr, handle)
    }

    #[test]
    fn keep_alive_requests_with_lengths_chunks_and_head() {
        let (addr, server) = serve(vec![
            "HTTP/1.1 201 Created\r\nLocation: /files/abc\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nUpload-Offset: 7\r\nContent-Length: 99\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
        ]);
        let data = random_bytes(10, 7);
        let mut c = Conn::connect(&addr).unwrap();
        let r = c.request("POST", "/files/", &[("Upload-Length", "25")], Body::Empty).unwrap();
        assert_eq!((r.status, r.header("location"), r.body.as_slice()), (201, Some("/files/abc"), &b"ok"[..]));
        let r = c.request("GET", "/x", &[], Body::Empty).unwrap();
        assert_eq!(r.body, b"abcde");
        let r = c.request("HEAD", "/files/abc", &[], Body::Empty).unwrap();
        assert_eq!((r.status, r.header("upload-offset")), (200, Some("7")));
        let r = c.request("PATCH", "/files/abc", &[], Body::Repeat { buf: &data, start: 3, len: 25 }).unwrap();
        assert_eq!(r.status, 204);
        let heads = server.join().unwrap();
        assert!(heads[0].starts_with("POST /files/ HTTP/1.1\r\n"));
        assert!(heads[0].contains("Content-Length: 0"));
        assert!(heads[3].contains("Content-Length: 25"));
    }

    #[test]
    fn random_bytes_are_deterministic_and_varied() {
        let a = random_bytes(1000, 1);
        assert_eq!(a, random_bytes(1000, 1));
        assert_ne!(a, random_bytes(1000, 2));
        assert!(a.iter().filter(|&&b| b == 0).count() < 20);
    }
}
