#include "api/s3/access/cors.h"

#include <gtest/gtest.h>

#include <map>
#include <pugixml.hpp>
#include <string>
#include <vector>

namespace cairn::s3 {
namespace {

// A CORSConfiguration around the given rules' XML.
std::string Doc(const std::string& rules) {
  return "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" + rules +
         "</CORSConfiguration>";
}

std::string Rule(const std::vector<std::string>& methods, const std::vector<std::string>& origins,
                 const std::vector<std::string>& headers = {},
                 const std::vector<std::string>& expose = {}, const std::string& extra = "") {
  std::string out = "<CORSRule>";
  for (const auto& m : methods) out += "<AllowedMethod>" + m + "</AllowedMethod>";
  for (const auto& o : origins) out += "<AllowedOrigin>" + o + "</AllowedOrigin>";
  for (const auto& h : headers) out += "<AllowedHeader>" + h + "</AllowedHeader>";
  for (const auto& e : expose) out += "<ExposeHeader>" + e + "</ExposeHeader>";
  return out + extra + "</CORSRule>";
}

CorsConfiguration MustParse(const std::string& xml) {
  CorsParseError kind = CorsParseError::kMalformedXML;
  auto configuration = CorsConfiguration::Parse(xml, &kind);
  EXPECT_TRUE(configuration.ok()) << configuration.status().ToString() << "\n" << xml;
  EXPECT_EQ(kind, CorsParseError::kNone);
  if (!configuration.ok()) return CorsConfiguration();
  return std::move(configuration).value();
}

void ExpectError(const std::string& xml, CorsParseError expected, const std::string& needle) {
  CorsParseError kind = CorsParseError::kNone;
  auto configuration = CorsConfiguration::Parse(xml, &kind);
  ASSERT_FALSE(configuration.ok()) << "accepted: " << xml;
  EXPECT_EQ(kind, expected) << configuration.status().message();
  EXPECT_EQ(configuration.status().code(), expected == CorsParseError::kMaxMessageLengthExceeded
                                               ? StatusCode::kPayloadTooLarge
                                               : StatusCode::kInvalidArgument);
  EXPECT_NE(configuration.status().message().find(needle), std::string::npos)
      << "message: " << configuration.status().message() << "\nexpected: " << needle;
}

void ExpectMalformed(const std::string& xml, const std::string& needle) {
  ExpectError(xml, CorsParseError::kMalformedXML, needle);
}

void ExpectInvalidRequest(const std::string& xml, const std::string& needle) {
  ExpectError(xml, CorsParseError::kInvalidRequest, needle);
}

std::map<std::string, std::string> AsMap(const CorsHeaders& headers) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : headers) {
    EXPECT_TRUE(out.emplace(name, value).second) << "header twice: " << name;
  }
  return out;
}

// The value of a header, or "<none>".
std::string Header(const CorsHeaders& headers, const std::string& name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "<none>";
}

// ---------------------------------------------------------------------------------------
// Parse and Render

TEST(CorsParse, FullRuleRoundTrips) {
  CorsConfiguration configuration = MustParse(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
      Doc("<CORSRule>\n  <ID>web &amp; app</ID>\n  <AllowedOrigin>https://*.example.com"
          "</AllowedOrigin>\n  <AllowedOrigin>http://localhost:3000</AllowedOrigin>\n"
          "  <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\n"
          "  <AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader>\n"
          "  <ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader>\n"
          "  <MaxAgeSeconds> 3000 </MaxAgeSeconds>\n  <!-- a comment -->\n</CORSRule>" +
          Rule({"GET"}, {"*"})));
  ASSERT_EQ(configuration.rules().size(), 2u);
  const CorsRule& rule = configuration.rules()[0];
  EXPECT_EQ(rule.id, "web & app");
  EXPECT_EQ(rule.allowed_origins,
            (std::vector<std::string>{"https://*.example.com", "http://localhost:3000"}));
  EXPECT_EQ(rule.allowed_methods, (std::vector<std::string>{"GET", "PUT"}));
  EXPECT_EQ(rule.allowed_headers, (std::vector<std::string>{"x-amz-*", "Content-Type"}));
  EXPECT_EQ(rule.expose_headers, (std::vector<std::string>{"ETag", "x-amz-request-id"}));
  EXPECT_EQ(rule.max_age_seconds, 3000);
  EXPECT_FALSE(configuration.rules()[1].max_age_seconds);

  std::string xml = configuration.Render();
  pugi::xml_document document;
  ASSERT_TRUE(document.load_string(xml.c_str())) << xml;
  pugi::xml_node root = document.document_element();
  EXPECT_STREQ(root.name(), "CORSConfiguration");
  EXPECT_STREQ(root.attribute("xmlns").value(), "http://s3.amazonaws.com/doc/2006-03-01/");
  EXPECT_STREQ(root.child("CORSRule").child_value("ID"), "web & app");
  EXPECT_STREQ(root.child("CORSRule").child_value("MaxAgeSeconds"), "3000");

  CorsConfiguration again = MustParse(xml);
  ASSERT_EQ(again.rules().size(), 2u);
  EXPECT_EQ(again.rules()[0].id, rule.id);
  EXPECT_EQ(again.rules()[0].allowed_origins, rule.allowed_origins);
  EXPECT_EQ(again.rules()[0].allowed_methods, rule.allowed_methods);
  EXPECT_EQ(again.rules()[0].allowed_headers, rule.allowed_headers);
  EXPECT_EQ(again.rules()[0].expose_headers, rule.expose_headers);
  EXPECT_EQ(again.rules()[0].max_age_seconds, rule.max_age_seconds);
  EXPECT_EQ(again.Render(), xml);
}

TEST(CorsParse, NamespaceIsOptionalAndEscapesRender) {
  CorsConfiguration configuration = MustParse(
      "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod>"
      "<AllowedOrigin><![CDATA[http://a.example/<x>]]></AllowedOrigin>"
      "<AllowedOrigin>http://b.example/&quot;&apos;</AllowedOrigin>"
      "</CORSRule></CORSConfiguration>");
  EXPECT_EQ(configuration.rules()[0].allowed_origins[0], "http://a.example/<x>");
  std::string xml = configuration.Render();
  EXPECT_NE(xml.find("http://a.example/&lt;x&gt;"), std::string::npos) << xml;
  EXPECT_NE(xml.find("http://b.example/&quot;&apos;"), std::string::npos) << xml;
}

TEST(CorsParse, AllMethodsAndHundredRules) {
  std::string rules;
  for (int i = 0; i < 100; ++i) rules += Rule({"GET", "PUT", "HEAD", "POST", "DELETE"}, {"*"});
  EXPECT_EQ(MustParse(Doc(rules)).rules().size(), 100u);
  ExpectMalformed(Doc(rules + Rule({"GET"}, {"*"})), "more than 100 CORSRule elements");
}

TEST(CorsParse, RefusesBadStructure) {
  ExpectMalformed("", "not well-formed");
  ExpectMalformed("<CORSConfiguration>", "not well-formed");
  ExpectMalformed("<CORSConfig/>", "not <CORSConfiguration>");
  ExpectMalformed("<s3:CORSConfiguration xmlns:s3=\"x\"/>", "not <CORSConfiguration>");
  ExpectMalformed(Doc(""), "no CORSRule");
  ExpectMalformed(Doc("<Rule/>"), "unknown element <Rule>");
  ExpectMalformed(Doc("text"), "unexpected text");
  ExpectMalformed(Doc("<CORSRule>x<AllowedMethod>GET</AllowedMethod></CORSRule>"),
                  "unexpected text inside CORSRule");
  ExpectMalformed(Doc(Rule({"GET"}, {"*"}, {}, {}, "<Colour>red</Colour>")),
                  "unknown element <Colour>");
  ExpectMalformed(Doc(Rule({}, {"*"})), "CORSRule 0: no AllowedMethod");
  ExpectMalformed(Doc(Rule({"GET"}, {"*"}) + Rule({"GET"}, {})), "CORSRule 1: no AllowedOrigin");
  ExpectMalformed(Doc(Rule({"GET"}, {""})), "empty AllowedOrigin");
  ExpectMalformed(Doc(Rule({"GET"}, {"*"}, {" "})), "empty AllowedHeader");
  ExpectMalformed(Doc(Rule({"GET"}, {"*"}, {}, {""})), "empty ExposeHeader");
  ExpectMalformed(Doc("<CORSRule><AllowedMethod><b>GET</b></AllowedMethod></CORSRule>"),
                  "AllowedMethod must hold text only");
  ExpectMalformed(
      Doc(Rule({"GET"}, {"*"}) + "</CORSConfiguration><CORSConfiguration>" + Rule({"GET"}, {"*"})),
      "more than one root element");
  ExpectMalformed(Doc(Rule({"GET"}, {"*"})) + "trailing", "text outside the root element");
}

TEST(CorsParse, RefusesBadIdsAndMaxAge) {
  ExpectMalformed(Doc(Rule({"GET"}, {"*"}, {}, {}, "<ID>" + std::string(256, 'i') + "</ID>")),
                  "ID is longer than 255 characters");
  MustParse(Doc(Rule({"GET"}, {"*"}, {}, {}, "<ID>" + std::string(255, 'i') + "</ID>")));
  ExpectMalformed(Doc(Rule({"GET"}, {"*"}, {}, {}, "<ID>a</ID><ID>b</ID>")), "more than one ID");
  for (const char* bad : {"-1", "abc", "1.5", "", "+5", "99999999999", "0x10"}) {
    ExpectMalformed(Doc(Rule({"GET"}, {"*"}, {}, {},
                             std::string("<MaxAgeSeconds>") + bad + "</MaxAgeSeconds>")),
                    "is not a non-negative integer");
  }
  EXPECT_EQ(MustParse(Doc(Rule({"GET"}, {"*"}, {}, {}, "<MaxAgeSeconds>0</MaxAgeSeconds>")))
                .rules()[0]
                .max_age_seconds,
            0);
  ExpectMalformed(Doc(Rule({"GET"}, {"*"}, {}, {},
                           "<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds>")),
                  "more than one MaxAgeSeconds");
}

TEST(CorsParse, RefusesUnsupportedMethodsAsInvalidRequest) {
  for (const char* method : {"PATCH", "OPTIONS", "get", "CONNECT", ""}) {
    ExpectInvalidRequest(Doc(Rule({method}, {"*"})),
                         std::string("Found unsupported HTTP method in CORS config. "
                                     "Unsupported method is ") +
                             method);
  }
}

TEST(CorsParse, RefusesSecondWildcards) {
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"http://*.*.example.com"})),
                       "AllowedOrigin \"http://*.*.example.com\" can not have more than one "
                       "wildcard.");
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"**"})), "can not have more than one wildcard");
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"*"}, {"x-*-*"})),
                       "AllowedHeader \"x-*-*\" can not have more than one wildcard.");
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"*"}, {}, {"x-amz-*"})),
                       "ExposeHeader \"x-amz-*\" contains wildcard.");
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"*"}, {}, {"bad header"})),
                       "ExposeHeader \"bad header\" contains invalid character.");
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"*"}, {}, {"a:b"})), "contains invalid character");
}

TEST(CorsParse, RefusesControlCharacters) {
  // Character references decode to bytes that must never reach a response header.
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"*"}, {}, {"x&#13;&#10;Set-Cookie: a=b"})),
                       "ExposeHeader contains a control character");
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"http://a&#1;b"})),
                       "AllowedOrigin contains a control character");
  ExpectInvalidRequest(Doc(Rule({"GET"}, {"*"}, {}, {}, "<ID>a&#x7f;</ID>")),
                       "ID contains a control character");
}

TEST(CorsParse, RefusesHostileXml) {
  ExpectMalformed("<!DOCTYPE CORSConfiguration [<!ENTITY x \"GET\">]>" +
                      Doc("<CORSRule><AllowedMethod>&x;</AllowedMethod>"
                          "<AllowedOrigin>*</AllowedOrigin></CORSRule>"),
                  "DOCTYPE and other markup declarations are not allowed");
  ExpectMalformed(
      "<!DOCTYPE CORSConfiguration SYSTEM \"file:///etc/passwd\">" + Doc(Rule({"GET"}, {"*"})),
      "DOCTYPE");
  ExpectMalformed(Doc("<CORSRule><AllowedMethod>&x;</AllowedMethod>"
                      "<AllowedOrigin>*</AllowedOrigin></CORSRule>"),
                  "only the predefined entities");
  ExpectMalformed(Doc(Rule({"GET"}, {"&#0;"})), "only the predefined entities");
  ExpectMalformed(Doc(Rule({"GET"}, {"&#xD800;"})), "only the predefined entities");
  ExpectMalformed(Doc(Rule({"GET"}, {"caf\xc3"})), "not valid UTF-8");
  ExpectMalformed(Doc(Rule({"GET"}, {std::string("a\0b", 3)})), "NUL byte");
  std::string open;
  std::string close;
  for (int i = 0; i < 5000; ++i) {
    open += "<a>";
    close += "</a>";
  }
  ExpectMalformed(Doc(open), "not well-formed");
  ExpectMalformed(Doc(open + close), "unknown element <a>");
}

TEST(CorsParse, RefusesOversizedBodies) {
  std::string big = Doc(Rule({"GET"}, {"*"}, {}, {}, "<!--" + std::string(70000, 'x') + "-->"));
  ExpectError(big, CorsParseError::kMaxMessageLengthExceeded, "the limit is 65536");
}

// ---------------------------------------------------------------------------------------
// Matching

TEST(CorsMatch, WildcardOrigins) {
  CorsConfiguration configuration =
      MustParse(Doc(Rule({"GET"}, {"*.example.com"}) + Rule({"PUT"}, {"http://*.example.org"}) +
                    Rule({"DELETE"}, {"http://*:8080"})));
  auto matches = [&](const char* origin, const char* method) {
    return configuration.Match(origin, method, {}) != nullptr;
  };
  EXPECT_TRUE(matches("http://www.example.com", "GET"));
  EXPECT_TRUE(matches("https://a.b.example.com", "GET"));
  EXPECT_TRUE(matches(".example.com", "GET"));
  EXPECT_FALSE(matches("http://example.com", "GET"));
  EXPECT_FALSE(matches("http://www.example.com.evil", "GET"));
  EXPECT_FALSE(matches("http://www.example.com", "PUT"));
  EXPECT_TRUE(matches("http://a.example.org", "PUT"));
  EXPECT_FALSE(matches("https://a.example.org", "PUT"));
  EXPECT_FALSE(matches("http://example.org", "PUT"));
  // Origins compare case-sensitively, as in S3.
  EXPECT_FALSE(matches("HTTP://a.example.org", "PUT"));
  EXPECT_FALSE(matches("http://a.EXAMPLE.org", "PUT"));
  EXPECT_TRUE(matches("http://localhost:8080", "DELETE"));
  EXPECT_FALSE(matches("http://localhost:8081", "DELETE"));
  // Methods are exact.
  EXPECT_FALSE(matches("http://www.example.com", "get"));
  EXPECT_FALSE(matches("http://www.example.com", "OPTIONS"));
}

TEST(CorsMatch, HeaderPatternsAnyCase) {
  CorsConfiguration configuration =
      MustParse(Doc(Rule({"PUT"}, {"*"}, {"x-amz-*", "Content-Type", "*-md5"})));
  auto matches = [&](std::vector<std::string> headers) {
    return configuration.Match("http://a", "PUT", headers) != nullptr;
  };
  EXPECT_TRUE(matches({}));
  EXPECT_TRUE(matches({"x-amz-date"}));
  EXPECT_TRUE(matches({"X-Amz-Date", "content-type"}));
  EXPECT_TRUE(matches({"CONTENT-TYPE", "content-md5"}));
  EXPECT_TRUE(matches({"x-amz-"}));  // '*' may match nothing
  EXPECT_FALSE(matches({"x-amz-date", "authorization"}));
  EXPECT_FALSE(matches({"content-typex"}));

  CorsConfiguration any = MustParse(Doc(Rule({"PUT"}, {"*"}, {"*"})));
  EXPECT_NE(any.Match("http://a", "PUT", {"anything", "x-whatever"}), nullptr);
  CorsConfiguration none = MustParse(Doc(Rule({"PUT"}, {"*"})));
  EXPECT_EQ(none.Match("http://a", "PUT", {"x-amz-date"}), nullptr);
  EXPECT_NE(none.Match("http://a", "PUT", {}), nullptr);
}

TEST(CorsMatch, FirstMatchingRuleWins) {
  CorsConfiguration configuration =
      MustParse(Doc(Rule({"PUT"}, {"http://a.example"}, {}, {}, "<ID>put-only</ID>") +
                    Rule({"GET"}, {"http://a.example"}, {"x-one"}, {}, "<ID>first-get</ID>") +
                    Rule({"GET"}, {"*"}, {"*"}, {}, "<ID>catch-all</ID>") +
                    Rule({"GET"}, {"http://a.example"}, {}, {}, "<ID>never</ID>")));
  const CorsRule* rule = configuration.Match("http://a.example", "GET", {});
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->id, "first-get");
  // A rule that fails on headers is skipped for the next.
  rule = configuration.Match("http://a.example", "GET", {"x-two"});
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->id, "catch-all");
  rule = configuration.Match("http://b.example", "GET", {});
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->id, "catch-all");
  EXPECT_EQ(configuration.Match("http://b.example", "DELETE", {}), nullptr);
}

TEST(SplitRequestHeaders, TrimsLowersAndDropsEmpties) {
  EXPECT_EQ(SplitRequestHeaders("X-Amz-Date, Content-Type,,  x-amz-meta-a ,"),
            (std::vector<std::string>{"x-amz-date", "content-type", "x-amz-meta-a"}));
  EXPECT_TRUE(SplitRequestHeaders("").empty());
  EXPECT_TRUE(SplitRequestHeaders(" , ,").empty());
}

// ---------------------------------------------------------------------------------------
// Preflight and actual-request headers

TEST(CorsPreflight, HeadersForASpecificOrigin) {
  CorsConfiguration configuration =
      MustParse(Doc(Rule({"GET", "PUT"}, {"http://*.example.com"}, {"x-amz-*", "content-type"},
                         {"ETag", "x-amz-version-id"}, "<MaxAgeSeconds>600</MaxAgeSeconds>")));
  auto headers =
      configuration.Preflight("http://app.example.com", "PUT", "X-Amz-Date, Content-Type");
  ASSERT_TRUE(headers.ok()) << headers.status().ToString();
  EXPECT_EQ(AsMap(*headers),
            (std::map<std::string, std::string>{
                {"Access-Control-Allow-Origin", "http://app.example.com"},
                {"Access-Control-Allow-Methods", "GET, PUT"},
                {"Access-Control-Allow-Headers", "x-amz-date, content-type"},
                {"Access-Control-Expose-Headers", "ETag, x-amz-version-id"},
                {"Access-Control-Max-Age", "600"},
                {"Access-Control-Allow-Credentials", "true"},
                {"Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"},
            }));
  EXPECT_EQ(headers->front().first, "Access-Control-Allow-Origin");
}

TEST(CorsPreflight, WildcardOriginAnswersStar) {
  CorsConfiguration configuration = MustParse(Doc(Rule({"GET"}, {"*"})));
  auto headers = configuration.Preflight("http://anything.example", "GET", std::nullopt);
  ASSERT_TRUE(headers.ok());
  EXPECT_EQ(AsMap(*headers),
            (std::map<std::string, std::string>{
                {"Access-Control-Allow-Origin", "*"},
                {"Access-Control-Allow-Methods", "GET"},
                {"Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"},
            }));
  // A rule listing "*" after a specific origin answers with the one that matched first.
  CorsConfiguration mixed = MustParse(Doc(Rule({"GET"}, {"http://a.example", "*"})));
  EXPECT_EQ(Header(*mixed.Preflight("http://a.example", "GET", std::nullopt),
                   "Access-Control-Allow-Origin"),
            "http://a.example");
  EXPECT_EQ(Header(*mixed.Preflight("http://b.example", "GET", std::nullopt),
                   "Access-Control-Allow-Origin"),
            "*");
  // A partial wildcard is not "*": the request origin is echoed, with credentials.
  CorsConfiguration partial = MustParse(Doc(Rule({"GET"}, {"http://*"})));
  auto echoed = partial.Preflight("http://b.example", "GET", std::nullopt);
  EXPECT_EQ(Header(*echoed, "Access-Control-Allow-Origin"), "http://b.example");
  EXPECT_EQ(Header(*echoed, "Access-Control-Allow-Credentials"), "true");
}

TEST(CorsPreflight, Errors) {
  CorsConfiguration configuration = MustParse(Doc(Rule({"GET"}, {"http://a.example"})));
  auto no_origin = configuration.Preflight(std::nullopt, "GET", std::nullopt);
  EXPECT_EQ(no_origin.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(no_origin.status().message(), kCorsMissingOriginMessage);
  EXPECT_EQ(configuration.Preflight("", "GET", std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  auto no_method = configuration.Preflight("http://a.example", std::nullopt, std::nullopt);
  EXPECT_EQ(no_method.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(no_method.status().message(), kCorsMissingMethodMessage);
  auto refused = configuration.Preflight("http://b.example", "GET", std::nullopt);
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(refused.status().message(), kCorsNotAllowedMessage);
  EXPECT_EQ(configuration.Preflight("http://a.example", "PUT", std::nullopt).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(configuration.Preflight("http://a.example", "GET", "x-amz-date").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(kCorsNotAllowedMessage.substr(0, 47),
            "CORSResponse: This CORS request is not allowed.");
}

TEST(CorsPreflight, WithoutConfiguration) {
  EXPECT_EQ(PreflightWithoutConfiguration(std::nullopt, std::nullopt).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PreflightWithoutConfiguration("http://a", std::nullopt).code(),
            StatusCode::kInvalidArgument);
  Status status = PreflightWithoutConfiguration("http://a", "GET");
  EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(status.message(), kCorsNotEnabledMessage);
}

TEST(CorsResponseHeaders, ActualRequests) {
  CorsConfiguration configuration =
      MustParse(Doc(Rule({"GET", "HEAD"}, {"http://a.example"}, {"*"}, {"ETag"},
                         "<MaxAgeSeconds>60</MaxAgeSeconds>") +
                    Rule({"PUT"}, {"*"})));
  CorsHeaders headers = configuration.ResponseHeaders("http://a.example", "GET");
  EXPECT_EQ(AsMap(headers),
            (std::map<std::string, std::string>{
                {"Access-Control-Allow-Origin", "http://a.example"},
                {"Access-Control-Allow-Methods", "GET, HEAD"},
                {"Access-Control-Expose-Headers", "ETag"},
                {"Access-Control-Max-Age", "60"},
                {"Access-Control-Allow-Credentials", "true"},
                {"Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"},
            }));
  EXPECT_EQ(Header(configuration.ResponseHeaders("http://b.example", "PUT"),
                   "Access-Control-Allow-Origin"),
            "*");
  EXPECT_TRUE(configuration.ResponseHeaders("", "GET").empty());
  EXPECT_TRUE(configuration.ResponseHeaders("http://b.example", "GET").empty());
  // Access-Control-Request-Method, when present, is the method matched.
  EXPECT_EQ(Header(configuration.ResponseHeaders("http://a.example", "PUT", "GET"),
                   "Access-Control-Allow-Methods"),
            "GET, HEAD");
  EXPECT_TRUE(configuration.ResponseHeaders("http://a.example", "GET", "DELETE").empty());
}

// ---------------------------------------------------------------------------------------
// Ceph s3-tests scenarios (test_cors_*), as unit cases: the status the handler answers
// with is the test's concern; here, which headers each request gets.

struct Expect {
  std::string allow_origin;   // "<none>" when absent
  std::string allow_methods;  // "<none>" when absent
};

void CheckActual(const CorsConfiguration& configuration, const char* method,
                 std::optional<std::string> origin, std::optional<std::string> request_method,
                 const Expect& expect) {
  CorsHeaders headers;
  if (origin) {
    headers = configuration.ResponseHeaders(
        *origin, method,
        request_method ? std::optional<std::string_view>(*request_method) : std::nullopt);
  }
  SCOPED_TRACE(std::string(method) + " origin=" + origin.value_or("-") +
               " acrm=" + request_method.value_or("-"));
  EXPECT_EQ(Header(headers, "Access-Control-Allow-Origin"), expect.allow_origin);
  EXPECT_EQ(Header(headers, "Access-Control-Allow-Methods"), expect.allow_methods);
}

// OPTIONS: the status a handler would answer with, and the headers.
void CheckOptions(const CorsConfiguration& configuration, std::optional<std::string> origin,
                  std::optional<std::string> request_method, int status, const Expect& expect) {
  auto result = configuration.Preflight(
      origin ? std::optional<std::string_view>(*origin) : std::nullopt,
      request_method ? std::optional<std::string_view>(*request_method) : std::nullopt,
      std::nullopt);
  SCOPED_TRACE("OPTIONS origin=" + origin.value_or("-") + " acrm=" + request_method.value_or("-"));
  int answered = result.ok()                                              ? 200
                 : result.status().code() == StatusCode::kInvalidArgument ? 400
                                                                          : 403;
  EXPECT_EQ(answered, status);
  CorsHeaders headers = result.ok() ? *result : CorsHeaders{};
  EXPECT_EQ(Header(headers, "Access-Control-Allow-Origin"), expect.allow_origin);
  EXPECT_EQ(Header(headers, "Access-Control-Allow-Methods"), expect.allow_methods);
}

TEST(CorsS3Tests, SetCorsRoundTrip) {
  // test_set_cors
  CorsConfiguration configuration = MustParse(Doc(Rule({"GET", "PUT"}, {"*.get", "*.put"})));
  CorsConfiguration again = MustParse(configuration.Render());
  EXPECT_EQ(again.rules()[0].allowed_methods, (std::vector<std::string>{"GET", "PUT"}));
  EXPECT_EQ(again.rules()[0].allowed_origins, (std::vector<std::string>{"*.get", "*.put"}));
}

TEST(CorsS3Tests, OriginResponse) {
  // test_cors_origin_response
  CorsConfiguration c = MustParse(Doc(Rule({"GET"}, {"*suffix"}) + Rule({"GET"}, {"start*end"}) +
                                      Rule({"GET"}, {"prefix*"}) + Rule({"PUT"}, {"*.put"})));
  const Expect none{"<none>", "<none>"};
  CheckActual(c, "GET", std::nullopt, std::nullopt, none);
  CheckActual(c, "GET", "foo.suffix", std::nullopt, {"foo.suffix", "GET"});
  CheckActual(c, "GET", "foo.bar", std::nullopt, none);
  CheckActual(c, "GET", "foo.suffix.get", std::nullopt, none);
  CheckActual(c, "GET", "startend", std::nullopt, {"startend", "GET"});
  CheckActual(c, "GET", "start1end", std::nullopt, {"start1end", "GET"});
  CheckActual(c, "GET", "start12end", std::nullopt, {"start12end", "GET"});
  CheckActual(c, "GET", "0start12end", std::nullopt, none);
  CheckActual(c, "GET", "prefix", std::nullopt, {"prefix", "GET"});
  CheckActual(c, "GET", "prefix.suffix", std::nullopt, {"prefix.suffix", "GET"});
  CheckActual(c, "GET", "bla.prefix", std::nullopt, none);
  // On an object (the 404 / 403 are the handler's).
  CheckActual(c, "GET", "foo.suffix", std::nullopt, {"foo.suffix", "GET"});
  CheckActual(c, "PUT", "foo.suffix", "GET", {"foo.suffix", "GET"});
  CheckActual(c, "PUT", "foo.suffix", "PUT", none);
  CheckActual(c, "PUT", "foo.suffix", "DELETE", none);
  CheckActual(c, "PUT", "foo.suffix", std::nullopt, none);
  CheckActual(c, "PUT", "foo.put", std::nullopt, {"foo.put", "PUT"});
  // Preflights.
  CheckOptions(c, std::nullopt, std::nullopt, 400, none);
  CheckOptions(c, "foo.suffix", std::nullopt, 400, none);
  CheckOptions(c, "bla", std::nullopt, 400, none);
  CheckOptions(c, "foo.suffix", "GET", 200, {"foo.suffix", "GET"});
  CheckOptions(c, "foo.bar", "GET", 403, none);
  CheckOptions(c, "foo.suffix.get", "GET", 403, none);
  CheckOptions(c, "startend", "GET", 200, {"startend", "GET"});
  CheckOptions(c, "start1end", "GET", 200, {"start1end", "GET"});
  CheckOptions(c, "start12end", "GET", 200, {"start12end", "GET"});
  CheckOptions(c, "0start12end", "GET", 403, none);
  CheckOptions(c, "prefix", "GET", 200, {"prefix", "GET"});
  CheckOptions(c, "prefix.suffix", "GET", 200, {"prefix.suffix", "GET"});
  CheckOptions(c, "bla.prefix", "GET", 403, none);
  CheckOptions(c, "foo.put", "GET", 403, none);
  CheckOptions(c, "foo.put", "PUT", 200, {"foo.put", "PUT"});
}

TEST(CorsS3Tests, OriginWildcard) {
  // test_cors_origin_wildcard
  CorsConfiguration c = MustParse(Doc(Rule({"GET"}, {"*"})));
  CheckActual(c, "GET", std::nullopt, std::nullopt, {"<none>", "<none>"});
  CheckActual(c, "GET", "example.origin", std::nullopt, {"*", "GET"});
}

TEST(CorsS3Tests, HeaderOption) {
  // test_cors_header_option: a requested header no AllowedHeader covers is refused.
  CorsConfiguration c = MustParse(Doc(Rule({"GET"}, {"*"}, {}, {"x-amz-meta-header1"})));
  auto result = c.Preflight("example.origin", "GET", "x-amz-meta-header2");
  EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied);
}

TEST(CorsS3Tests, PresignedMethods) {
  // _test_cors_options_presigned_method, for GET and PUT.
  for (const char* method : {"GET", "PUT"}) {
    EXPECT_EQ(PreflightWithoutConfiguration(std::nullopt, std::nullopt).code(),
              StatusCode::kInvalidArgument);  // 400 before the configuration exists
    CorsConfiguration c = MustParse(Doc(Rule({method}, {"example"})));
    CheckOptions(c, "example", method, 200, {"example", method});
  }
}

}  // namespace
}  // namespace cairn::s3
