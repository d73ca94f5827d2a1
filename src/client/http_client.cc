#include "client/http_client.h"
#include "core/text.h"

#include <utility>  // Boost 1.74 headers need it first.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <optional>

namespace cairn::client {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kPieceBytes = 256 * 1024;
constexpr size_t kKeptBodyBytes = 1 << 20;

}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgumentError("endpoint must look like http://HOST:PORT");
  }
  std::string_view rest = url.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  Endpoint endpoint;
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    endpoint.host = std::string(rest);
    endpoint.port = 80;
    return endpoint;
  }
  endpoint.host = std::string(rest.substr(0, colon));
  std::string_view port = rest.substr(colon + 1);
  unsigned value = 0;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (error != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return InvalidArgumentError("endpoint has a bad port: " + std::string(url));
  }
  endpoint.port = static_cast<uint16_t>(value);
  return endpoint;
}

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& header : headers) {
    if (EqualsIgnoreCaseAscii(header.first, name)) return &header.second;
  }
  return nullptr;
}

struct HttpClient::Impl {
  explicit Impl(Endpoint endpoint) : endpoint(std::move(endpoint)), stream(io_context) {}

  Status Connect() {
    beast::error_code ec;
    tcp::resolver resolver(io_context);
    auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
    if (ec) return UnavailableError("cannot resolve " + endpoint.host + ": " + ec.message());
    stream.expires_after(std::chrono::seconds(std::min(30, endpoint.timeout_seconds)));
    stream.connect(results, ec);
    if (ec) {
      return UnavailableError("cannot connect to " + endpoint.host + ":" +
                              std::to_string(endpoint.port) + ": " + ec.message());
    }
    stream.socket().set_option(tcp::no_delay(true), ec);
    connected = true;
    return OkStatus();
  }

  Result<HttpResponse> SendOnce(const HttpRequest& request,
                                const std::function<void(std::string_view)>& sink) {
    beast::error_code ec;
    bhttp::request<bhttp::buffer_body> message{bhttp::string_to_verb(request.method),
                                               request.target, 11};
    message.set(bhttp::field::host, endpoint.host);
    for (const auto& [name, value] : request.headers) message.set(name, value);
    const uint64_t size = request.body_source ? request.body_size : request.body.size();
    if (size > 0 || request.method == "POST" || request.method == "PUT") {
      message.content_length(size);
    }
    message.keep_alive(true);
    message.body().data = nullptr;
    message.body().more = size > 0;
    bhttp::request_serializer<bhttp::buffer_body> serializer(message);
    stream.expires_after(std::chrono::seconds(endpoint.timeout_seconds));
    bhttp::write_header(stream, serializer, ec);
    if (ec) return UnavailableError("sending request head: " + ec.message());
    uint64_t sent = 0;
    while (sent < size) {
      std::string_view chunk;
      if (request.body_source) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(kPieceBytes, size - sent));
        size_t n = request.body_source(Scratch(), want);
        if (n == 0) return InternalError("body source ended early");
        chunk = std::string_view(Scratch(), n);
      } else {
        chunk = request.body.substr(sent, kPieceBytes);
      }
      sent += chunk.size();
      message.body().data = const_cast<char*>(chunk.data());
      message.body().size = chunk.size();
      message.body().more = sent < size;
      stream.expires_after(std::chrono::seconds(endpoint.timeout_seconds));
      bhttp::write(stream, serializer, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) return UnavailableError("sending request body: " + ec.message());
    }
    if (size > 0 && !serializer.is_done()) {
      message.body().data = nullptr;
      message.body().more = false;
      bhttp::write(stream, serializer, ec);
      if (ec) return UnavailableError("finishing request body: " + ec.message());
    }

    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (request.method == "HEAD") parser.skip(true);
    stream.expires_after(std::chrono::seconds(endpoint.timeout_seconds));
    bhttp::read_header(stream, buffer, parser, ec);
    if (ec) return UnavailableError("reading response head: " + ec.message());
    HttpResponse response;
    response.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    char* scratch = Scratch();
    while (!parser.is_done()) {
      parser.get().body().data = scratch;
      parser.get().body().size = kPieceBytes;
      stream.expires_after(std::chrono::seconds(endpoint.timeout_seconds));
      bhttp::read(stream, buffer, parser, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) return UnavailableError("reading response body: " + ec.message());
      size_t n = kPieceBytes - parser.get().body().size;
      response.body_bytes += n;
      if (sink) {
        sink(std::string_view(scratch, n));
      } else if (response.body.size() < kKeptBodyBytes) {
        response.body.append(scratch, std::min(n, kKeptBodyBytes - response.body.size()));
      }
    }
    if (!parser.keep_alive()) Close();
    return response;
  }

  void Close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.consume(buffer.size());
    connected = false;
  }

  // One body buffer for the connection's life, not one (zeroed) per request: a load
  // generator sending small objects otherwise spends a good part of its time here.
  char* Scratch() {
    if (!scratch) scratch = std::make_unique_for_overwrite<char[]>(kPieceBytes);
    return scratch.get();
  }

  Endpoint endpoint;
  std::unique_ptr<char[]> scratch;
  asio::io_context io_context;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
};

HttpClient::HttpClient(Endpoint endpoint) : impl_(std::make_unique<Impl>(std::move(endpoint))) {}
HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::Send(const HttpRequest& request,
                                      const std::function<void(std::string_view)>& sink) {
  // A kept-alive connection may have been closed by the server meanwhile: retry once on a
  // fresh one, but only when nothing of this request can have been processed.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = impl_->connected;
    if (!impl_->connected) RETURN_IF_ERROR(impl_->Connect());
    auto response = impl_->SendOnce(request, sink);
    if (response.ok()) return response;
    impl_->Close();
    if (!reused || request.body_source) return response;
  }
  return UnavailableError("request failed twice");
}

}  // namespace cairn::client
