// The web console's server side (docs/console.md) over a real SQLite store, wired as
// `cairn serve` wires it: sessions, CSRF, scopes and tenants, the calls the page makes.
#include "api/console/console.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

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
    deps.run_gc = [this](const api::console::JobProgressFn& report) -> Result<JobOutcome> {
      report({"removing unreferenced chunks", 7, 0});
      std::unique_lock<std::mutex> lock(job_mutex_);
      // Bounded: a test that forgets to release the job fails instead of hanging.
      job_released_.wait_for(lock, std::chrono::seconds(30), [this] { return job_release_; });
      JobOutcome outcome;
      outcome.counts = {{"deleted_chunks", 3}};
      return outcome;
    };
    deps.request_totals = [this] {
      std::lock_guard<std::mutex> lock(job_mutex_);
      return totals_;
    };
    deps.presign = [this](const ShareRequest& share) -> Result<std::string> {
      shared_.push_back(share);
      return std::string("http://127.0.0.1:9000/") + share.bucket + "/signed";
    };
    return deps;
  }

  // A signed-in browser: its cookie and CSRF token.
  struct Browser {
    std::string cookie;
    std::string csrf;
  };

  Response Call(const std::string& method, const std::string& target, const Browser* browser,
                const std::string& body = "", bool with_csrf = true) {
    Request request = StreamRequest(method, target, browser, with_csrf);
    if (!body.empty()) request.headers.emplace_back("content-type", "application/json");
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

  Request StreamRequest(const std::string& method, const std::string& target,
                        const Browser* browser, bool with_csrf = true) {
    Request request;
    request.method = method;
    const size_t question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) request.query = target.substr(question + 1);
    request.headers.emplace_back("host", "127.0.0.1:9001");
    if (browser != nullptr) {
      request.headers.emplace_back("cookie", "other=1; cairn_console=" + browser->cookie);
      if (with_csrf) request.headers.emplace_back("x-csrf-token", browser->csrf);
    }
    return request;
  }

  void ReleaseJob() {
    std::lock_guard<std::mutex> lock(job_mutex_);
    job_release_ = true;
    job_released_.notify_all();
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
  std::mutex job_mutex_;
  std::condition_variable job_released_;
  bool job_release_ = false;  // GUARDED_BY(job_mutex_)
  std::vector<ShareRequest> shared_;
  RequestTotals totals_;  // GUARDED_BY(job_mutex_)
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
  EXPECT_EQ(response.body.find(key.substr(std::string("cairn_").size() + 16 + 1)),
            std::string::npos);

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
  // Store-wide, physical bytes count the small objects kept inline in the metadata too.
  Browser everyone = SignInWithKey({"*"}, meta::Scope::kRead);
  Json store = BodyOf(Call("GET", "/api/overview", &everyone));
  EXPECT_EQ(store["objects"], 2);
  EXPECT_EQ(store["inline_bytes"], 10);
  EXPECT_EQ(store["physical_bytes"], 10);
  EXPECT_EQ(store["dedup_ratio"], 1.0);

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
  // A tenant holding only an empty bucket is listed for a key of every tenant.
  Browser everyone = SignInWithKey({"*"}, meta::Scope::kRead);
  EXPECT_EQ(BodyOf(Call("GET", "/api/tenants", &everyone))["tenants"], Json({"acme"}));
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
  EXPECT_EQ(listed.body.find(secret.substr(std::string("cairn_").size() + 16 + 1)),
            std::string::npos);
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

TEST_F(ConsoleTest, AStreamedCallIsAdmittedOnlyWithItsTokenAndRights) {
  Browser writer = SignInWithKey({"acme"}, meta::Scope::kWrite);
  Browser reader = SignInWithKey({"acme"}, meta::Scope::kRead);
  const std::string target = "/api/upload?tenant=acme&bucket=docs&key=a%2Fb.txt";
  EXPECT_TRUE(Console::IsStreamed("PUT", "/api/upload"));
  EXPECT_TRUE(Console::IsStreamed("GET", "/api/download"));
  EXPECT_FALSE(Console::IsStreamed("POST", "/api/upload"));

  auto admitted = console_.AdmitStream(StreamRequest("PUT", target, &writer));
  ASSERT_TRUE(std::holds_alternative<StreamCall>(admitted)) << std::get<Response>(admitted).body;
  const StreamCall& call = std::get<StreamCall>(admitted);
  EXPECT_EQ(call.kind, StreamCall::Kind::kUpload);
  EXPECT_EQ(call.key, "a/b.txt");

  auto status_of = [](const std::variant<Response, StreamCall>& answer) {
    return std::holds_alternative<Response>(answer) ? std::get<Response>(answer).status : 0;
  };
  // No CSRF token, another origin, no session, a read key, another tenant: refused.
  EXPECT_EQ(status_of(console_.AdmitStream(StreamRequest("PUT", target, &writer, false))), 403);
  Request foreign = StreamRequest("PUT", target, &writer);
  foreign.headers.emplace_back("origin", "http://evil.example");
  EXPECT_EQ(status_of(console_.AdmitStream(foreign)), 403);
  EXPECT_EQ(status_of(console_.AdmitStream(StreamRequest("PUT", target, nullptr))), 401);
  EXPECT_EQ(status_of(console_.AdmitStream(StreamRequest("PUT", target, &reader))), 403);
  EXPECT_EQ(status_of(console_.AdmitStream(
                StreamRequest("PUT", "/api/upload?tenant=other&bucket=docs&key=x", &writer))),
            403);
  // What the console does not do is refused, never ignored.
  for (const char* header : {"content-encoding", "content-md5"}) {
    Request asking = StreamRequest("PUT", target, &writer);
    asking.headers.emplace_back(header, "gzip");
    EXPECT_EQ(status_of(console_.AdmitStream(asking)), 400) << header;
  }
  // A bucket name another tenant holds is not written into.
  ASSERT_TRUE(store_.objects()->CreateNamespace("other", "theirs").ok());
  EXPECT_EQ(status_of(console_.AdmitStream(
                StreamRequest("PUT", "/api/upload?tenant=acme&bucket=theirs&key=x", &writer))),
            409);
  // A refusal carries the console's security headers.
  auto refused = console_.AdmitStream(StreamRequest("PUT", target, &reader));
  EXPECT_NE(HeaderOf(std::get<Response>(refused), "Content-Security-Policy"), nullptr);
  // Reading needs no token (a GET changes nothing), and a read key may.
  auto download = console_.AdmitStream(StreamRequest(
      "GET", "/api/download?tenant=acme&bucket=docs&key=x&disposition=inline", &reader, false));
  ASSERT_TRUE(std::holds_alternative<StreamCall>(download));
  EXPECT_TRUE(std::get<StreamCall>(download).inline_disposition);
  EXPECT_EQ(status_of(console_.AdmitStream(StreamRequest(
                "GET", "/api/download?tenant=acme&bucket=docs&key=x&disposition=html", &reader))),
            400);
  EXPECT_EQ(status_of(console_.AdmitStream(
                StreamRequest("GET", "/api/download?tenant=acme&bucket=docs", &reader))),
            400);
  // A part names an upload that exists for exactly that object.
  EXPECT_EQ(status_of(console_.AdmitStream(StreamRequest(
                "PUT", "/api/uploads/part?tenant=acme&bucket=docs&key=x&upload_id=nope&part=1",
                &writer))),
            404);
  EXPECT_EQ(status_of(console_.AdmitStream(StreamRequest(
                "PUT", "/api/uploads/part?tenant=acme&bucket=docs&key=x&upload_id=u&part=10001",
                &writer))),
            400);
}

TEST_F(ConsoleTest, AMultipartUploadFromThePageCompletesOnceAndCanBeResumed) {
  Browser writer = SignInWithKey({"acme"}, meta::Scope::kWrite);
  ASSERT_EQ(Call("POST", "/api/buckets", &writer, R"({"tenant":"acme","name":"docs"})").status,
            201);
  Response created = Call("POST", "/api/uploads", &writer,
                          R"({"tenant":"acme","bucket":"docs","key":"big.bin",)"
                          R"("content_type":"application/x-test"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = BodyOf(created)["upload_id"];
  const std::string named = "tenant=acme&bucket=docs&key=big.bin&upload_id=" + id;
  // The page's parts arrive through AdmitStream and the multipart service (as ConsoleApi
  // streams them): part 2 first, then part 1, as a resumed upload would.
  const std::string part1(objects::kMinPartSizeBytes, 'a');
  const std::string part2 = "tail";
  std::map<int, std::string> etags;
  for (int number : {2, 1}) {
    auto admitted = console_.AdmitStream(StreamRequest(
        "PUT", "/api/uploads/part?" + named + "&part=" + std::to_string(number), &writer));
    ASSERT_TRUE(std::holds_alternative<StreamCall>(admitted));
    const StreamCall& call = std::get<StreamCall>(admitted);
    auto part = multipart_.BeginPart(*call.upload, call.part, std::nullopt);
    ASSERT_TRUE(part.ok()) << part.status().ToString();
    ASSERT_TRUE((*part)->Write(number == 1 ? part1 : part2).ok());
    auto committed = (*part)->Commit();
    ASSERT_TRUE(committed.ok()) << committed.status().ToString();
    etags[number] = committed->object.etag;
    // What arrived so far: a page resumes by sending the rest.
    Response listed = Call("GET", "/api/uploads/parts?" + named, &writer);
    ASSERT_EQ(listed.status, 200) << listed.body;
    EXPECT_EQ(BodyOf(listed)["parts"].size(), number == 2 ? 1u : 2u);
  }
  Json complete{{"tenant", "acme"}, {"bucket", "docs"}, {"key", "big.bin"}, {"upload_id", id}};
  complete["parts"] = Json::array({Json{{"part", 1}, {"etag", etags[1]}}});
  // A list that leaves out a part the page sent completes with what it names; a wrong ETag
  // is refused.
  Json wrong = complete;
  wrong["parts"][0]["etag"] = "0123";
  EXPECT_EQ(Call("POST", "/api/uploads/complete", &writer, wrong.dump()).status, 400);
  complete["parts"].push_back(Json{{"part", 2}, {"etag", etags[2]}});
  Response done = Call("POST", "/api/uploads/complete", &writer, complete.dump());
  ASSERT_EQ(done.status, 201) << done.body;
  EXPECT_EQ(BodyOf(done)["size_bytes"], part1.size() + part2.size());
  EXPECT_EQ(BodyOf(done)["content_type"], "application/x-test");
  // The retried completion (the first answer lost) gets the same object.
  Response again = Call("POST", "/api/uploads/complete", &writer, complete.dump());
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(BodyOf(again)["id"], BodyOf(done)["id"]);
  EXPECT_EQ(Call("DELETE", "/api/uploads?" + named, &writer).status, 404);
  // Without the token nothing starts.
  EXPECT_EQ(
      Call("POST", "/api/uploads", &writer, R"({"tenant":"acme","bucket":"docs","key":"k"})", false)
          .status,
      403);
}

TEST_F(ConsoleTest, TheDetailPaneShowsMetadataTagsAndWhichChunksAreShared) {
  // Large enough for chunks (not inline); the two copies share theirs.
  const std::string shared(256 * 1024, 's');
  PutObject("acme", "docs", "one", shared);
  PutObject("acme", "docs", "two", shared);
  PutObject("acme", "docs", "alone", std::string(256 * 1024, 'u'));
  // Another tenant's copy of the same bytes is not shown to acme: it would tell acme what
  // another tenant stores.
  PutObject("other", "theirs", "copy", std::string(256 * 1024, 'u'));
  Browser reader = SignInWithKey({"acme"}, meta::Scope::kRead);
  Response one = Call("GET", "/api/object?tenant=acme&bucket=docs&key=one", &reader);
  ASSERT_EQ(one.status, 200) << one.body;
  Json detail = BodyOf(one);
  EXPECT_EQ(detail["size_bytes"], shared.size());
  EXPECT_FALSE(detail["inline"].get<bool>());
  ASSERT_GE(detail["chunks"].size(), 1u);
  EXPECT_EQ(detail["chunk_count"], detail["chunks"].size());
  for (const Json& chunk : detail["chunks"]) {
    EXPECT_TRUE(chunk["shared"].get<bool>()) << chunk.dump();
    EXPECT_GE(chunk["references"].get<uint64_t>(), 2u);
  }
  Response alone = Call("GET", "/api/object?tenant=acme&bucket=docs&key=alone", &reader);
  ASSERT_EQ(alone.status, 200);
  const Json alone_chunks = BodyOf(alone)["chunks"];
  ASSERT_GE(alone_chunks.size(), 1u);
  for (const Json& chunk : alone_chunks) EXPECT_FALSE(chunk["shared"].get<bool>());
  Browser everyone = SignInWithKey({"*"}, meta::Scope::kRead);
  const Json seen_by_all =
      BodyOf(Call("GET", "/api/object?tenant=acme&bucket=docs&key=alone", &everyone))["chunks"];
  ASSERT_GE(seen_by_all.size(), 1u);
  for (const Json& chunk : seen_by_all) EXPECT_TRUE(chunk["shared"].get<bool>());
  EXPECT_EQ(Call("GET", "/api/object?tenant=acme&bucket=docs&key=none", &reader).status, 404);
  Browser other = SignInWithKey({"other"}, meta::Scope::kRead);
  EXPECT_EQ(Call("GET", "/api/object?tenant=acme&bucket=docs&key=one", &other).status, 403);
}

TEST_F(ConsoleTest, AShareLinkNeedsAnS3SessionAndABoundedExpiry) {
  PutObject("acme", "docs", "a b.txt", "hello");
  Browser api = SignInWithKey({"acme"}, meta::Scope::kRead);
  const std::string body =
      R"({"tenant":"acme","bucket":"docs","key":"a b.txt","expires_seconds":3600})";
  Response refused = Call("POST", "/api/share", &api, body);
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(BodyOf(refused)["error"]["message"].get<std::string>().find("S3 key pair"),
            std::string::npos);
  EXPECT_TRUE(shared_.empty());

  server::KeyGrant grant{{"acme"}, meta::Scope::kRead, ""};
  auto created = server::CreateS3Key(store_.meta(), *store_.stores()->secrets, grant, 1);
  ASSERT_TRUE(created.ok());
  Browser s3 = SignIn(Json{{"access_key", created->access_key}, {"secret_key", created->secret}});
  Response link = Call("POST", "/api/share", &s3, body);
  ASSERT_EQ(link.status, 200) << link.body;
  EXPECT_EQ(BodyOf(link)["url"], "http://127.0.0.1:9000/docs/signed");
  ASSERT_EQ(shared_.size(), 1u);
  EXPECT_EQ(shared_[0].access_key, created->access_key);
  EXPECT_EQ(shared_[0].key, "a b.txt");
  EXPECT_EQ(shared_[0].expires_seconds, 3600);
  for (const char* expiry : {"0", "604801", "\"1\"", "1.5"}) {
    std::string bad = R"({"tenant":"acme","bucket":"docs","key":"a b.txt","expires_seconds":)" +
                      std::string(expiry) + "}";
    EXPECT_EQ(Call("POST", "/api/share", &s3, bad).status, 400) << expiry;
  }
  EXPECT_EQ(Call("POST", "/api/share", &s3,
                 R"({"tenant":"acme","bucket":"docs","key":"none","expires_seconds":60})")
                .status,
            404);
  EXPECT_EQ(shared_.size(), 1u);
}

TEST_F(ConsoleTest, GcRunsAsAJobOneAtATimeForAnAdminOfEveryTenant) {
  Browser tenant_admin = SignInWithKey({"acme"}, meta::Scope::kAdmin);
  EXPECT_EQ(Call("POST", "/api/jobs", &tenant_admin, R"({"kind":"gc"})").status, 403);
  EXPECT_EQ(Call("GET", "/api/jobs", &tenant_admin).status, 403);
  Browser admin = SignInWithKey({"*"}, meta::Scope::kAdmin);
  EXPECT_EQ(Call("POST", "/api/jobs", &admin, R"({"kind":"defrag"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/jobs", &admin, R"({"kind":"fsck"})").status, 501);
  Response started = Call("POST", "/api/jobs", &admin, R"({"kind":"gc"})");
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_EQ(BodyOf(started)["state"], "running");
  EXPECT_EQ(Call("POST", "/api/jobs", &admin, R"({"kind":"gc"})").status, 409);
  now_ms_ += 1500;
  // Bounded wait for the job's thread to report where it is.
  Json jobs;
  for (int i = 0; i < 500; ++i) {
    jobs = BodyOf(Call("GET", "/api/jobs", &admin));
    if (!jobs["jobs"][0]["progress"].is_null()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(jobs["jobs"].size(), 1u);
  EXPECT_EQ(jobs["jobs"][0]["state"], "running");
  EXPECT_EQ(jobs["jobs"][0]["elapsed_ms"], 1500);
  EXPECT_EQ(jobs["jobs"][0]["progress"],
            Json({{"phase", "removing unreferenced chunks"}, {"done", 7}, {"total", 0}}));
  ReleaseJob();
  // Bounded wait for the job's thread to report.
  Json job;
  for (int i = 0; i < 500; ++i) {
    job = BodyOf(Call("GET", "/api/jobs", &admin))["jobs"][0];
    if (job["state"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(job["state"], "done");
  EXPECT_EQ(job["result"]["deleted_chunks"], 3);
  EXPECT_TRUE(job["progress"].is_null());
  // Once done, another may start.
  EXPECT_EQ(Call("POST", "/api/jobs", &admin, R"({"kind":"gc"})").status, 202);
}

TEST_F(ConsoleTest, RequestRatesArePerMinuteDeltasOfTheServersCounters) {
  // The console sampled the counters (all zero) when it started.
  {
    std::lock_guard<std::mutex> lock(job_mutex_);
    totals_ = RequestTotals{10, 2, 1};
  }
  now_ms_ += Console::kRateIntervalMs;
  console_.SampleRates();
  {
    std::lock_guard<std::mutex> lock(job_mutex_);
    totals_ = RequestTotals{15, 2, 1};
  }
  now_ms_ += Console::kRateIntervalMs / 2;
  Browser admin = SignInWithKey({"*"}, meta::Scope::kRead);
  Response rates = Call("GET", "/api/rates", &admin);
  ASSERT_EQ(rates.status, 200) << rates.body;
  Json points = BodyOf(rates)["points"];
  ASSERT_EQ(points.size(), 2u) << points.dump();
  EXPECT_EQ(points[0]["requests"], 10);
  EXPECT_EQ(points[0]["client_errors"], 2);
  EXPECT_EQ(points[0]["server_errors"], 1);
  EXPECT_EQ(points[1]["requests"], 5);  // the minute running now
  EXPECT_EQ(points[1]["server_errors"], 0);
  // An hour of minutes at most.
  for (size_t i = 0; i < Console::kRateSamples + 5; ++i) {
    now_ms_ += Console::kRateIntervalMs;
    console_.SampleRates();
  }
  admin = SignInWithKey({"*"}, meta::Scope::kRead);  // the first session idled out
  EXPECT_EQ(BodyOf(Call("GET", "/api/rates", &admin))["points"].size(), Console::kRateSamples);
  Browser tenant = SignInWithKey({"acme"}, meta::Scope::kAdmin);
  EXPECT_EQ(Call("GET", "/api/rates", &tenant).status, 403);
}

TEST_F(ConsoleTest, AKeyOfEveryTenantSeesTenantsThatNoKeyNames) {
  PutObject("lonely", "things", "k", "x");
  Browser admin = SignInWithKey({"*"}, meta::Scope::kRead);
  Json tenants = BodyOf(Call("GET", "/api/tenants", &admin))["tenants"];
  EXPECT_NE(std::find(tenants.begin(), tenants.end(), "lonely"), tenants.end()) << tenants.dump();
  Json overview = BodyOf(Call("GET", "/api/overview", &admin));
  bool listed = false;
  for (const Json& row : overview["tenants"]) listed |= row["tenant"] == "lonely";
  EXPECT_TRUE(listed) << overview.dump();
  // Per storage class: the one-byte object is hot (and inline: no chunk).
  bool hot = false;
  for (const Json& root : overview["storage_roots"]) {
    if (root["class"] != "hot") continue;
    hot = true;
    EXPECT_EQ(root["logical_bytes"], 1) << root.dump();
    EXPECT_EQ(root["chunks"], 0) << root.dump();
  }
  EXPECT_TRUE(hot) << overview.dump();
  Browser other = SignInWithKey({"acme"}, meta::Scope::kRead);
  EXPECT_EQ(BodyOf(Call("GET", "/api/tenants", &other))["tenants"], Json::array({"acme"}));
}

}  // namespace
}  // namespace cairn::api::console
