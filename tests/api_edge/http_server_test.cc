// The HTTP server's request framing, without TCP: each test connection is a Unix
// socketpair whose server end HttpServer::Adopt serves, driven by RunOneFor on this thread
// (the path the fuzz harness uses). The handler echoes what the server framed for it.
#include <utility>  // Boost 1.74's awaitable.hpp needs it first.

#include "http/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

#include "http/exchange.h"

namespace cairn::http {
namespace {

// Echoes "<method> <target> <body length> <body>"; /throw throws, as a handler bug would.
Awaitable<void> Echo(Exchange& exchange) {
  const RequestHead& head = exchange.request();
  if (head.path == "/throw") throw std::runtime_error("a handler bug");
  std::string body;
  char buffer[4096];
  for (int i = 0; i < 100000; ++i) {
    Result<size_t> n = co_await exchange.ReadBody(buffer, sizeof(buffer));
    if (!n.ok()) co_return;
    if (*n == 0) break;
    body.append(buffer, *n);
  }
  ResponseHead response;
  response.status = 200;
  response.headers.emplace_back("Content-Type", "text/plain");
  std::string text =
      head.method + " " + head.target + " " + std::to_string(body.size()) + " " + body;
  (void)co_await exchange.Respond(std::move(response), std::move(text));
}

std::pair<ResponseHead, std::string> RenderError(int status, const std::string& code,
                                                 const std::string& message) {
  ResponseHead head;
  head.status = status;
  return {head, code + ": " + message};
}

size_t Count(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++count;
  }
  return count;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ListenerOptions options;
    options.port = 0;  // 127.0.0.1; nothing connects to it (connections are adopted)
    options.max_header_bytes = 8 * 1024;
    auto port = server_.AddListener(options, Echo, RenderError);
    ASSERT_TRUE(port.ok()) << port.status().ToString();
  }

  // A new connection: this end's fd.
  int Connect() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    server_.Adopt(0, fds[1]);
    return fds[0];
  }

  // Sends `data` (all of it, running the server while the socket is full).
  void Send(int fd, const std::string& data) {
    size_t sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (sent < data.size() && std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        break;  // the server closed
      } else {
        server_.RunOneFor(std::chrono::milliseconds(10));
      }
    }
  }

  // Runs the server and reads until `done(received)`, the server closes, or 10 s pass.
  // Sets closed_ when the server closed the connection.
  std::string Pump(int fd, const std::function<bool(const std::string&)>& done) {
    std::string received;
    closed_ = false;
    char buffer[16384];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done && done(received)) break;
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n > 0) {
        received.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        closed_ = true;
        break;
      }
      server_.RunOneFor(std::chrono::milliseconds(10));
    }
    return received;
  }

  // Sends `request`, half-closes, and reads everything until the server closes.
  std::string Exchange(const std::string& request) {
    const int fd = Connect();
    Send(fd, request);
    ::shutdown(fd, SHUT_WR);
    std::string received = Pump(fd, nullptr);
    EXPECT_TRUE(closed_) << "the server did not close the connection";
    ::close(fd);
    server_.RunOneFor(std::chrono::milliseconds(0));
    return received;
  }

  HttpServer server_;
  bool closed_ = false;
};

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  const std::string out = Exchange(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "DELETE /c HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(Count(out, "HTTP/1.1 200"), 3u) << out;
  EXPECT_NE(out.find("GET /a 0 "), std::string::npos) << out;
  EXPECT_NE(out.find("POST /b?q=1 5 hello"), std::string::npos) << out;
  EXPECT_NE(out.find("DELETE /c 0 "), std::string::npos) << out;
  EXPECT_LT(out.find("GET /a"), out.find("POST /b"));
}

TEST_F(HttpServerTest, AChunkedBodyReachesTheHandlerDecoded) {
  const std::string out = Exchange(
      "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
  EXPECT_NE(out.find("HTTP/1.1 200"), std::string::npos) << out;
  EXPECT_NE(out.find("PUT /c 11 hello world"), std::string::npos) << out;
}

TEST_F(HttpServerTest, ExpectContinueGets100BeforeTheBodyIsSent) {
  const int fd = Connect();
  Send(fd, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  const std::string interim = Pump(fd, [](const std::string& received) {
    return received.find("\r\n\r\n") != std::string::npos;
  });
  EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << interim;
  EXPECT_EQ(interim.find("HTTP/1.1 200"), std::string::npos) << interim;
  Send(fd, "hello");
  ::shutdown(fd, SHUT_WR);
  const std::string rest = Pump(fd, nullptr);
  EXPECT_NE(rest.find("HTTP/1.1 200"), std::string::npos) << rest;
  EXPECT_NE(rest.find("POST /e 5 hello"), std::string::npos) << rest;
  ::close(fd);
}

TEST_F(HttpServerTest, AnOversizedHeaderBlockIs431) {
  const std::string out =
      Exchange("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9 * 1024, 'a') + "\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out.substr(0, 200);
  EXPECT_EQ(out.find("GET / "), std::string::npos);
}

TEST_F(HttpServerTest, BadFramingIs400AndReachesNoHandler) {
  for (const char* request :
       {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "NOT A REQUEST LINE\r\n\r\n"}) {
    const std::string out = Exchange(request);
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << request << "\n" << out.substr(0, 200);
    EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos) << request;
  }
}

TEST_F(HttpServerTest, AHandlerExceptionClosesItsConnectionOnly) {
  const std::string out = Exchange("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos) << out;
  // The process and the server go on: a new connection is served.
  const std::string next = Exchange("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(next.find("GET /after 0 "), std::string::npos) << next;
}

}  // namespace
}  // namespace cairn::http
