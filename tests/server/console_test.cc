// The web console's server side (docs/console.md) over a real SQLite store, wired as
// `cairn serve` wires it: sessions, CSRF, scopes and tenants, the calls the page makes.
#include "api/console/console.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "auth/authenticator.h"
#include "objects/multipart.h"
#include "server/app.h"
#include "server/key_admin.h"
#include "test_store.h"

namespace cairn::api::console {
namespace {

using Json = nlohmann::json;

const std::string* HeaderOf(const Response& response, std::string_view name) {
  for (const auto& header : response.headers) {
    if (header.first == name) return &header.second;
  }
  return nullptr;
}

Json BodyOf(const Response& response) { return Json::parse(response.body); }

class ConsoleTest : public ::testing::Test {
 protected:
  ConsoleTest()
      : multipart_(store_.objects()),
        authenticator_(store_.meta(), std::nullopt),
        console_(Dependencies()) {}

  // As `cairn serve` wires it, on a clock the test moves.
  api::console::ConsoleDependencies Dependencies() {
    auto deps = server::ConsoleDependenciesFor(store_.objects(), &multipart_, &authenticator_,
                                               store_.stores(), "sqlite");
    deps.now_ms = [this] { return now_ms_; };
    return deps;
  }

  // A signed-in browser: its cookie and CSRF token.
  struct Browser {
    std::string cookie;
    std::string csrf;
  };

  Response Call(const std::string& method, const std::string& target, const Browser* browser,
                const std::string& body = "", bool with_csrf = true) {
    Request request;
    request.method = method;
    const size_t question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) request.query = target.substr(question + 1);
    request.headers.emplace_back("host", "127.0.0.1:9001");
    if (!body.empty()) request.headers.emplace_back("content-type", "application/json");
    if (browser != nullptr) {
      request.headers.emplace_back("cookie", "other=1; cairn_console=" + browser->cookie);
      if (with_csrf) request.headers.emplace_back("x-csrf-token", browser->csrf);
    }
    request.body = body;
    return console_.Serve(request);
  }

  Browser SignIn(const Json& credentials) {
    Response response = Call("POST", "/api/session", nullptr, credentials.dump());
    EXPECT_EQ(response.status, 200) << response.body;
    const std::string* cookie = HeaderOf(response, "Set-Cookie");
    EXPECT_NE(cookie, nullptr);
    Browser browser;
    if (cookie == nullptr) return browser;
    const std::string prefix = "cairn_console=";
    browser.cookie = cookie->substr(prefix.size(), cookie->find(';') - prefix.size());
    browser.csrf = BodyOf(response)["csrf_token"];
    return browser;
  }

  Browser SignInWithKey(std::vector<std::string> tenants, meta::Scope scope) {
    return SignIn(Json{{"api_key", store_.AddApiKey(std::move(tenants), scope)}});
  }

  void PutObject(const std::string& tenant, const std::string& bucket, const std::string& key,
                 const std::string& bytes) {
    objects::UploadRequest request;
    request.tenant = tenant;
    request.namespace_name = bucket;
    request.key = key;
    auto upload = store_.objects()->BeginUpload(request);
    ASSERT_TRUE(upload.ok()) << upload.status().ToString();
    ASSERT_TRUE((*upload)->Write(bytes).ok());
    ASSERT_TRUE((*upload)->Commit().ok());
  }

  TimestampMs now_ms_ = 1'000'000'000'000;
  testing::TestStore store_;
  objects::MultipartService multipart_;
  auth::Authenticator authenticator_;
  Console console_;
};

TEST_F(ConsoleTest, ThePageIsEmbeddedAndEveryAnswerCarriesAStrictPolicy) {
  Response page = Call("GET", "/", nullptr);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("/assets/app.js"), std::string::npos);
  ASSERT_NE(HeaderOf(page, "Content-Type"), nullptr);
  EXPECT_EQ(HeaderOf(page, "Content-Type")->rfind("text/html", 0), 0u);
  for (const char* target : {"/", "/assets/app.js", "/assets/app.css", "/api/session", "/nope"}) {
    Response response = Call("GET", target, nullptr);
    const std::string* policy = HeaderOf(response, "Content-Security-Policy");
    ASSERT_NE(policy, nullptr) << target;
    EXPECT_NE(policy->find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(policy->find("unsafe-inline"), std::string::npos);
    EXPECT_NE(HeaderOf(response, "X-Content-Type-Options"), nullptr) << target;
    EXPECT_NE(HeaderOf(response, "X-Frame-Options"), nullptr) << target;
  }
  EXPECT_EQ(Call("GET", "/nope", nullptr).status, 404);
  EXPECT_EQ(Call("POST", "/", nullptr).status, 405);
  // No inline script in the page: the policy would block it.
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_EQ(page.body.find("onclick="), std::string::npos);
}

TEST_F(ConsoleTest, SignInSetsAnHttpOnlyStrictCookieAndAWrongKeyGetsNothing) {
  const std::string key = store_.AddApiKey({"acme"}, meta::Scope::kWrite);
  Response response = Call("POST", "/api/session", nullptr, Json{{"api_key", key}}.dump());
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string* cookie = HeaderOf(response, "Set-Cookie");
  ASSERT_NE(cookie, nullptr);
  EXPECT_NE(cookie->find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie->find("SameSite=Strict"), std::string::npos);
  EXPECT_NE(cookie->find("Path=/"), std::string::npos);
  EXPECT_NE(cookie->find("Max-Age=43200"), std::string::npos);
  Json session = BodyOf(response);
  EXPECT_EQ(session["scope"], "write");
  EXPECT_EQ(session["tenants"], Json::array({"acme"}));
  EXPECT_EQ(session["csrf_token"].get<std::string>().size(), 64u);
  // The secret is never echoed.
  EXPECT_EQ(response.body.find(key.substr(key.rfind('_') + 1)), std::string::npos);

  std::string wrong = key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  for (const Json& bad : {Json{{"api_key", wrong}}, Json{{"api_key", "cairn_nonsense"}},
                          Json{{"api_key", 5}}, Json::array(), Json{{"other", "x"}}}) {
    Response refused = Call("POST", "/api/session", nullptr, bad.dump());
    EXPECT_TRUE(refused.status == 401 || refused.status == 400) << bad.dump();
    EXPECT_EQ(HeaderOf(refused, "Set-Cookie"), nullptr) << bad.dump();
  }
  EXPECT_EQ(Call("POST", "/api/session", nullptr, "{not json").status, 400);
  EXPECT_EQ(console_.session_count(), 1u);
}

TEST_F(ConsoleTest, AnS3KeyPairSignsInAndAWrongSecretLooksLikeAnUnknownKey) {
  server::KeyGrant grant{{"acme"}, meta::Scope::kRead, ""};
  auto created = server::CreateS3Key(store_.meta(), *store_.stores()->secrets, grant, 1);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Browser browser =
      SignIn(Json{{"access_key", created->access_key}, {"secret_key", created->secret}});
  Response session = Call("GET", "/api/session", &browser);
  ASSERT_EQ(session.status, 200);
  EXPECT_EQ(BodyOf(session)["key_id"], created->access_key);
  EXPECT_EQ(BodyOf(session)["scope"], "read");

  Response wrong = Call("POST", "/api/session", nullptr,
                        Json{{"access_key", created->access_key}, {"secret_key", "x"}}.dump());
  Response unknown = Call("POST", "/api/session", nullptr,
                          Json{{"access_key", "AKIANOSUCHKEY0000000"}, {"secret_key", "x"}}.dump());
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(BodyOf(wrong)["error"]["message"], BodyOf(unknown)["error"]["message"]);
}

TEST_F(ConsoleTest, AStateChangeWithoutTheCsrfTokenOrFromAnotherOriginChangesNothing) {
  Browser browser = SignInWithKey({"acme"}, meta::Scope::kWrite);
  const std::string body = Json{{"tenant", "acme"}, {"name", "photos"}}.dump();
  Response no_token = Call("POST", "/api/buckets", &browser, body, /*with_csrf=*/false);
  EXPECT_EQ(no_token.status, 403);
  Browser forged = browser;
  forged.csrf = std::string(64, '0');
  EXPECT_EQ(Call("POST", "/api/buckets", &forged, body).status, 403);
  Request cross;
  cross.method = "POST";
  cross.path = "/api/buckets";
  cross.headers = {{"host", "127.0.0.1:9001"},
                   {"origin", "http://evil.example"},
                   {"content-type", "application/json"},
                   {"cookie", "cairn_console=" + browser.cookie},
                   {"x-csrf-token", browser.csrf}};
  cross.body = body;
  EXPECT_EQ(console_.Serve(cross).status, 403);
  EXPECT_TRUE(store_.objects()->ListNamespaces("acme")->empty());

  // A cross-site form can send text/plain only (no preflight): refused.
  cross.headers[1].second = "http://127.0.0.1:9001";
  cross.headers[2].second = "text/plain";
  EXPECT_EQ(console_.Serve(cross).status, 415);
  EXPECT_TRUE(store_.objects()->ListNamespaces("acme")->empty());
  cross.headers[2].second = "application/json";
  EXPECT_EQ(console_.Serve(cross).status, 201);
  ASSERT_EQ(store_.objects()->ListNamespaces("acme")->size(), 1u);

  // Signing in from another origin (login CSRF: the victim would work as the attacker).
  Request signin;
  signin.method = "POST";
  signin.path = "/api/session";
  signin.headers = {{"host", "127.0.0.1:9001"},
                    {"origin", "http://evil.example"},
                    {"content-type", "application/json"}};
  signin.body = Json{{"api_key", store_.AddApiKey({"acme"}, meta::Scope::kRead)}}.dump();
  EXPECT_EQ(console_.Serve(signin).status, 403);
  signin.headers[2].second = "text/plain";
  signin.headers[1].second = "http://127.0.0.1:9001";
  EXPECT_EQ(console_.Serve(signin).status, 415);
}

TEST_F(ConsoleTest, OnlyTheConsolesOwnHostNamesAreAnswered) {
  console_.SetAllowedHosts({"127.0.0.1:9001", "localhost:9001"});
  EXPECT_EQ(Call("GET", "/", nullptr).status, 200);  // Host 127.0.0.1:9001
  Request rebound;
  rebound.method = "GET";
  rebound.path = "/";
  rebound.headers = {{"host", "evil.example:9001"}};
  EXPECT_EQ(console_.Serve(rebound).status, 421);
  rebound.headers = {};
  EXPECT_EQ(console_.Serve(rebound).status, 421);
  rebound.headers = {{"host", "localhost:9001"}};
  EXPECT_EQ(console_.Serve(rebound).status, 200);
}

TEST_F(ConsoleTest, SessionsExpireAndOneKeyCannotFillTheTable) {
  Browser idle = SignInWithKey({"acme"}, meta::Scope::kRead);
  now_ms_ += Console::kSessionIdleMs - 1;
  EXPECT_EQ(Call("GET", "/api/session", &idle).status, 200);  // used: the idle time restarts
  now_ms_ += Console::kSessionIdleMs - 1;
  EXPECT_EQ(Call("GET", "/api/session", &idle).status, 200);
  now_ms_ += Console::kSessionIdleMs;
  EXPECT_EQ(Call("GET", "/api/session", &idle).status, 401);

  Browser busy = SignInWithKey({"acme"}, meta::Scope::kRead);
  for (int hour = 0; hour < 12; ++hour) {
    now_ms_ += Console::kSessionIdleMs - 1000;
    ASSERT_EQ(Call("GET", "/api/session", &busy).status, 200) << hour;
  }
  now_ms_ += Console::kSessionIdleMs - 1000;  // 12 h from sign-in: over, however busy
  EXPECT_EQ(Call("GET", "/api/session", &busy).status, 401);

  // One key signing in over and over keeps at most kMaxSessionsPerKey sessions; another
  // key's session is untouched.
  Browser other = SignInWithKey({"acme"}, meta::Scope::kRead);
  const std::string key = store_.AddApiKey({"acme"}, meta::Scope::kRead);
  for (size_t i = 0; i < 3 * Console::kMaxSessionsPerKey; ++i) {
    now_ms_ += 1;
    SignIn(Json{{"api_key", key}});
  }
  EXPECT_LE(console_.session_count(), Console::kMaxSessionsPerKey + 1);
  EXPECT_EQ(Call("GET", "/api/session", &other).status, 200);
}

TEST_F(ConsoleTest, SignOutEndsTheSessionOnTheServer) {
  Browser browser = SignInWithKey({"acme"}, meta::Scope::kRead);
  EXPECT_EQ(Call("GET", "/api/overview", &browser).status, 200);
  Response out = Call("DELETE", "/api/session", &browser);
  EXPECT_EQ(out.status, 204);
  ASSERT_NE(HeaderOf(out, "Set-Cookie"), nullptr);
  EXPECT_NE(HeaderOf(out, "Set-Cookie")->find("Max-Age=0"), std::string::npos);
  // A kept copy of the cookie is worthless now.
  EXPECT_EQ(Call("GET", "/api/overview", &browser).status, 401);
  EXPECT_EQ(Call("GET", "/api/session", &browser).status, 401);
  EXPECT_EQ(Call("GET", "/api/overview", nullptr).status, 401);
}

TEST_F(ConsoleTest, AnAdminOfOneTenantSeesAndRevokesOnlyItsTenantsKeys) {
  const std::string root_key = store_.AddApiKey({"*"}, meta::Scope::kAdmin);
  Browser root = SignIn(Json{{"api_key", root_key}});
  Browser acme_admin = SignInWithKey({"acme"}, meta::Scope::kAdmin);
  Browser beta = SignInWithKey({"beta"}, meta::Scope::kRead);
  const std::string root_id = BodyOf(Call("GET", "/api/session", &root))["key_id"];
  const std::string beta_id = BodyOf(Call("GET", "/api/session", &beta))["key_id"];
  Response listed = Call("GET", "/api/keys", &acme_admin);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body.find(root_id), std::string::npos);
  EXPECT_EQ(listed.body.find(beta_id), std::string::npos);
  EXPECT_EQ(listed.body.find("beta"), std::string::npos);
  EXPECT_EQ(Call("DELETE", "/api/keys/" + root_id, &acme_admin).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/keys/" + beta_id, &acme_admin).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/keys/" + root_key, &acme_admin).status, 404);
  EXPECT_EQ(Call("GET", "/api/session", &root).status, 200);
  EXPECT_EQ(Call("GET", "/api/session", &beta).status, 200);
  // The admin of every tenant sees them all.
  EXPECT_NE(Call("GET", "/api/keys", &root).body.find(beta_id), std::string::npos);
}

TEST_F(ConsoleTest, AnS3KeysSessionDoesNotGoAroundABucketPolicy) {
  server::KeyGrant grant{{"acme"}, meta::Scope::kWrite, ""};
  auto created = server::CreateS3Key(store_.meta(), *store_.stores()->secrets, grant, 1);
  ASSERT_TRUE(created.ok());
  PutObject("acme", "guarded", "keep.txt", "x");
  ASSERT_TRUE(store_.meta()
                  ->SetNamespaceSetting("acme", "guarded", "policy",
                                        std::string(R"({"Version":"2012-10-17","Statement":[]})"),
                                        now_ms_)
                  .ok());
  Browser s3 = SignIn(Json{{"access_key", created->access_key}, {"secret_key", created->secret}});
  EXPECT_EQ(Call("GET", "/api/objects?tenant=acme&bucket=guarded", &s3).status, 403);
  EXPECT_EQ(Call("DELETE", "/api/objects", &s3,
                 Json{{"tenant", "acme"}, {"bucket", "guarded"}, {"keys", {"keep.txt"}}}.dump())
                .status,
            403);
  EXPECT_TRUE(store_.objects()->StatByKey("acme", "guarded", "keep.txt").ok());
  // An API key's session is not bound by bucket policies (as on the native API).
  Browser api = SignInWithKey({"acme"}, meta::Scope::kRead);
  EXPECT_EQ(Call("GET", "/api/objects?tenant=acme&bucket=guarded", &api).status, 200);
}

TEST_F(ConsoleTest, RevokingTheKeyEndsItsSessions) {
  Browser admin = SignInWithKey({"*"}, meta::Scope::kAdmin);
  Browser user = SignInWithKey({"acme"}, meta::Scope::kRead);
  Response session = Call("GET", "/api/session", &user);
  ASSERT_EQ(session.status, 200);
  const std::string id = BodyOf(session)["key_id"];
  EXPECT_EQ(Call("DELETE", "/api/keys/" + id, &admin).status, 204);
  EXPECT_EQ(Call("GET", "/api/overview", &user).status, 401);
}

TEST_F(ConsoleTest, AKeySeesOnlyItsTenantsAndActsOnlyWithItsScope) {
  PutObject("acme", "docs", "a.txt", "alpha");
  PutObject("beta", "secret", "b.txt", "bravo");
  Browser reader = SignInWithKey({"acme"}, meta::Scope::kRead);
  EXPECT_EQ(Call("GET", "/api/buckets?tenant=beta", &reader).status, 403);
  EXPECT_EQ(Call("GET", "/api/objects?tenant=beta&bucket=secret", &reader).status, 403);
  Response buckets = Call("GET", "/api/buckets?tenant=acme", &reader);
  ASSERT_EQ(buckets.status, 200) << buckets.body;
  ASSERT_EQ(BodyOf(buckets)["buckets"].size(), 1u);
  EXPECT_EQ(BodyOf(buckets)["buckets"][0]["name"], "docs");
  EXPECT_EQ(BodyOf(buckets)["buckets"][0]["objects"], 1);

  Response overview = Call("GET", "/api/overview", &reader);
  ASSERT_EQ(overview.status, 200);
  Json figures = BodyOf(overview);
  ASSERT_EQ(figures["tenants"].size(), 1u);
  EXPECT_EQ(figures["tenants"][0]["tenant"], "acme");
  EXPECT_EQ(figures["objects"], 1);
  EXPECT_TRUE(figures["chunks"].is_null());  // store-wide figures: for keys of every tenant
  EXPECT_EQ(overview.body.find("beta"), std::string::npos);

  // A read key changes nothing, whatever the page shows.
  EXPECT_EQ(Call("POST", "/api/buckets", &reader, Json{{"tenant", "acme"}, {"name", "new"}}.dump())
                .status,
            403);
  EXPECT_EQ(Call("DELETE", "/api/objects", &reader,
                 Json{{"tenant", "acme"}, {"bucket", "docs"}, {"keys", {"a.txt"}}}.dump())
                .status,
            403);
  EXPECT_EQ(Call("GET", "/api/keys", &reader).status, 403);
  EXPECT_EQ(Call("GET", "/api/tenants", &reader).body.find("beta"), std::string::npos);

  // An admin of one tenant may not grant another.
  Browser admin = SignInWithKey({"acme"}, meta::Scope::kAdmin);
  Response grant = Call("POST", "/api/keys", &admin,
                        Json{{"kind", "api"}, {"tenants", {"beta"}}, {"scope", "read"}}.dump());
  EXPECT_EQ(grant.status, 403);
}

TEST_F(ConsoleTest, BucketsAreCreatedAndDeletedOnlyWhenEmpty) {
  Browser writer = SignInWithKey({"acme"}, meta::Scope::kWrite);
  auto create = [&](const std::string& name) {
    return Call("POST", "/api/buckets", &writer, Json{{"tenant", "acme"}, {"name", name}}.dump());
  };
  EXPECT_EQ(create("photos").status, 201);
  EXPECT_EQ(create("photos").status, 409);
  EXPECT_EQ(create("Bad_Name").status, 400);
  EXPECT_EQ(create(".uploads").status, 400);
  PutObject("acme", "photos", "cat.jpg", "meow");
  Response full = Call("DELETE", "/api/buckets?tenant=acme&name=photos", &writer);
  EXPECT_EQ(full.status, 409);
  EXPECT_NE(BodyOf(full)["error"]["message"].get<std::string>().find("not empty"),
            std::string::npos);
  Response deleted =
      Call("DELETE", "/api/objects", &writer,
           Json{{"tenant", "acme"}, {"bucket", "photos"}, {"keys", {"cat.jpg"}}}.dump());
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(BodyOf(deleted)["deleted"], Json::array({"cat.jpg"}));
  EXPECT_EQ(Call("DELETE", "/api/buckets?tenant=acme&name=photos", &writer).status, 204);
  EXPECT_EQ(Call("DELETE", "/api/buckets?tenant=acme&name=photos", &writer).status, 404);
}

TEST_F(ConsoleTest, TheObjectBrowserPagesByFolderAndKeepsHostileKeysAsData) {
  const std::string hostile = "<img src=x onerror=alert(1)>";
  for (const std::string& key :
       {std::string("a/1"), std::string("a/2"), std::string("b/1"), std::string("c"), hostile}) {
    PutObject("acme", "docs", key, "x");
  }
  Browser reader = SignInWithKey({"acme"}, meta::Scope::kRead);
  Response top = Call("GET", "/api/objects?tenant=acme&bucket=docs&delimiter=/", &reader);
  ASSERT_EQ(top.status, 200) << top.body;
  Json page = BodyOf(top);
  EXPECT_EQ(page["prefixes"], Json::array({"a/", "b/"}));
  ASSERT_EQ(page["objects"].size(), 2u);
  EXPECT_EQ(page["objects"][0]["key"], hostile);  // JSON data; the page renders it as text
  EXPECT_EQ(page["objects"][1]["key"], "c");
  EXPECT_TRUE(page["next_cursor"].is_null());

  // One entry a page: every entry once, folders rolled up, then the end.
  std::vector<std::string> seen;
  std::string cursor;
  for (int i = 0; i < 10; ++i) {
    std::string target = "/api/objects?tenant=acme&bucket=docs&delimiter=%2F&limit=1";
    if (!cursor.empty()) target += "&cursor=" + http::PercentEncode(cursor);
    Response response = Call("GET", target, &reader);
    ASSERT_EQ(response.status, 200) << response.body;
    Json one = BodyOf(response);
    for (const Json& prefix : one["prefixes"]) seen.push_back(prefix);
    for (const Json& object : one["objects"]) seen.push_back(object["key"]);
    if (one["next_cursor"].is_null()) break;
    cursor = one["next_cursor"];
  }
  EXPECT_EQ(seen, (std::vector<std::string>{hostile, "a/", "b/", "c"}));

  Response inside =
      Call("GET", "/api/objects?tenant=acme&bucket=docs&delimiter=/&prefix=a/", &reader);
  ASSERT_EQ(BodyOf(inside)["objects"].size(), 2u);
  EXPECT_EQ(Call("GET", "/api/objects?tenant=acme&bucket=docs&limit=0", &reader).status, 400);
  EXPECT_EQ(Call("GET", "/api/objects?tenant=acme&bucket=.uploads", &reader).status, 404);
}

TEST_F(ConsoleTest, KeysAreCreatedWithTheSecretShownOnceAndListedWithoutIt) {
  Browser admin = SignInWithKey({"*"}, meta::Scope::kAdmin);
  Response created = Call(
      "POST", "/api/keys", &admin,
      Json{{"kind", "api"}, {"tenants", {"acme"}}, {"scope", "read"}, {"description", "<b>ci</b>"}}
          .dump());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string secret = BodyOf(created)["secret"];
  // The new key works at once, in the console too.
  Browser user = SignIn(Json{{"api_key", secret}});
  EXPECT_EQ(Call("GET", "/api/session", &user).status, 200);
  Response listed = Call("GET", "/api/keys", &admin);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body.find(secret.substr(secret.rfind('_') + 1)), std::string::npos);
  bool found = false;
  const Json keys = BodyOf(listed)["keys"];
  const Json id = BodyOf(created)["id"];
  for (const Json& key : keys) {
    if (key["id"] == id) {
      found = true;
      EXPECT_EQ(key["description"], "<b>ci</b>");
      EXPECT_EQ(key["kind"], "api");
    }
  }
  EXPECT_TRUE(found) << listed.body;
  Response s3 = Call("POST", "/api/keys", &admin,
                     Json{{"kind", "s3"}, {"tenants", {"acme"}}, {"scope", "write"}}.dump());
  ASSERT_EQ(s3.status, 201) << s3.body;
  EXPECT_EQ(Call("POST", "/api/keys", &admin,
                 Json{{"kind", "ftp"}, {"tenants", {"acme"}}, {"scope", "read"}}.dump())
                .status,
            400);
  EXPECT_EQ(Call("POST", "/api/keys", &admin,
                 Json{{"kind", "api"}, {"tenants", {"Bad Tenant"}}, {"scope", "read"}}.dump())
                .status,
            400);
}

TEST_F(ConsoleTest, HostileInputGetsAClearErrorNeverACrash) {
  Browser admin = SignInWithKey({"*"}, meta::Scope::kAdmin);
  // Not UTF-8, echoed in a message: the answer is still valid JSON.
  Response odd = Call("GET", "/api/buckets?tenant=%ff%fe", &admin);
  EXPECT_NO_THROW(BodyOf(odd)) << odd.body;
  EXPECT_EQ(Call("GET", "/api/objects?tenant=acme&bucket=docs&cursor=%zz", &admin).status, 400);
  EXPECT_EQ(Call("GET", "/api/objects?tenant=acme&bucket=docs&cursor=***", &admin).status, 400);
  Response huge =
      Call("POST", "/api/buckets", &admin, std::string(Console::kMaxBodyBytes + 1, '{'));
  EXPECT_EQ(huge.status, 413);
  EXPECT_EQ(Call("POST", "/api/buckets", &admin, "[1,2]").status, 400);
  EXPECT_EQ(Call("PUT", "/api/overview", &admin).status, 405);
  EXPECT_EQ(Call("GET", "/api/unknown", &admin).status, 404);
  Request no_cookie_value;
  no_cookie_value.method = "GET";
  no_cookie_value.path = "/api/overview";
  no_cookie_value.headers = {{"cookie", "cairn_console="}};
  EXPECT_EQ(console_.Serve(no_cookie_value).status, 401);
}

}  // namespace
}  // namespace cairn::api::console
