#include "api/s3/access/policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::s3 {
namespace {

constexpr std::string_view kBucket = "photos";
constexpr const char* kObjects = "arn:aws:s3:::photos/*";

// A policy document around the given statement list (JSON text of a list or an object).
std::string Doc(const std::string& statements) {
  return R"json({"Version": "2012-10-17", "Statement": )json" + statements + "}";
}

// One Allow statement for everyone on the bucket's objects, with extra members.
std::string AllowAll(const std::string& action, const std::string& extra = "") {
  return Doc(R"json([{"Effect": "Allow", "Principal": "*", "Action": ")json" + action +
             R"json(", "Resource": "arn:aws:s3:::photos/*")json" +
             (extra.empty() ? "" : ", " + extra) + "}]");
}

BucketPolicy MustParse(const std::string& json) {
  auto policy = BucketPolicy::Parse(json, kBucket);
  EXPECT_TRUE(policy.ok()) << policy.status().ToString() << "\n" << json;
  if (!policy.ok()) return BucketPolicy();
  return std::move(policy).value();
}

// Expects Parse to refuse `json` with kInvalidArgument and a message containing `needle`.
void ExpectInvalid(const std::string& json, const std::string& needle) {
  auto policy = BucketPolicy::Parse(json, kBucket);
  ASSERT_FALSE(policy.ok()) << "accepted: " << json;
  EXPECT_EQ(policy.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(policy.status().message().find(needle), std::string::npos)
      << "message: " << policy.status().message() << "\nexpected to contain: " << needle;
}

PolicyRequest Request(std::string action, std::string resource,
                      std::optional<std::string> account = std::nullopt, std::string user = "",
                      const ConditionContext& context = ConditionContext()) {
  PolicyRequest request;
  request.action = std::move(action);
  request.resource = std::move(resource);
  request.account = std::move(account);
  request.user = std::move(user);
  request.conditions = context.AsLookup();
  return request;
}

PolicyRequest GetObject(const ConditionContext& context = ConditionContext(),
                        std::optional<std::string> account = std::nullopt) {
  return Request("s3:GetObject", "arn:aws:s3:::photos/cat.jpg", std::move(account), "", context);
}

// Evaluates a single-statement Allow policy with `condition` (a JSON object) against a
// GetObject request with `context`.
Decision WithCondition(const std::string& condition, const ConditionContext& context) {
  BucketPolicy policy = MustParse(AllowAll("s3:GetObject", R"json("Condition": )json" + condition));
  return policy.Evaluate(GetObject(context));
}

// ---------------------------------------------------------------------------------------
// Parsing: what is accepted

TEST(BucketPolicyParse, AcceptsTheUsualPublicReadPolicy) {
  BucketPolicy policy = MustParse(R"json({
    "Version": "2012-10-17",
    "Id": "public-read",
    "Statement": [{
      "Sid": "PublicRead",
      "Effect": "Allow",
      "Principal": "*",
      "Action": ["s3:GetObject", "s3:GetObjectVersion"],
      "Resource": "arn:aws:s3:::photos/*"
    }]
  })json");
  EXPECT_EQ(policy.version(), "2012-10-17");
  EXPECT_EQ(policy.id(), "public-read");
  ASSERT_EQ(policy.statements().size(), 1u);
  const PolicyStatement& statement = policy.statements()[0];
  EXPECT_EQ(statement.sid, "PublicRead");
  EXPECT_EQ(statement.effect, PolicyEffect::kAllow);
  ASSERT_EQ(statement.principals.size(), 1u);
  EXPECT_EQ(statement.principals[0].kind, PolicyPrincipal::Kind::kAny);
  EXPECT_EQ(statement.actions, (std::vector<std::string>{"s3:GetObject", "s3:GetObjectVersion"}));
  EXPECT_EQ(statement.resources, (std::vector<std::string>{"arn:aws:s3:::photos/*"}));
}

TEST(BucketPolicyParse, StatementMayBeASingleObject) {
  BucketPolicy policy = MustParse(Doc(
      R"json({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*"})json"));
  ASSERT_EQ(policy.statements().size(), 1u);
  EXPECT_EQ(policy.statements()[0].effect, PolicyEffect::kDeny);
}

TEST(BucketPolicyParse, AcceptsTheOlderVersion) {
  BucketPolicy policy = MustParse(
      R"json({"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Principal": "*",
              "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/*"}})json");
  EXPECT_EQ(policy.version(), "2008-10-17");
}

TEST(BucketPolicyParse, ActionsAnyCaseAndPatterns) {
  for (const char* action : {"s3:getobject", "S3:GETOBJECT", "s3:Get*", "s3:*", "*", "s3:?etObject",
                             "s3:*Tagging", "s3:List*"}) {
    MustParse(AllowAll(action));
  }
}

TEST(BucketPolicyParse, ResourcesInThisBucket) {
  for (const char* resource :
       {"arn:aws:s3:::photos", "arn:aws:s3:::photos/*", "arn:aws:s3:::photos/a/b.jpg",
        "arn:aws:s3:::pho*", "arn:aws:s3:::*", "arn:aws:s3:::photo?/x", "*"}) {
    MustParse(Doc(std::string(R"json([{"Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": ")json") +
                  resource + "\"}]"));
  }
}

TEST(BucketPolicyParse, PrincipalForms) {
  BucketPolicy policy = MustParse(Doc(R"json([{"Effect": "Allow", "Principal": {
      "AWS": ["*", "tenant-a", "arn:aws:iam::tenant-b:root", "arn:aws:iam::tenant-c:user/alice",
              "arn:aws:iam:::user/bob", "arn:aws:iam::tenant-d:user/team/carol"],
      "CanonicalUser": "tenant-e",
      "Service": "logging.s3.amazonaws.com",
      "Federated": "cognito-identity.amazonaws.com"},
      "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/*"}])json"));
  // Principal types come in key order (nlohmann keeps objects sorted); AWS values in list
  // order.
  const auto& principals = policy.statements()[0].principals;
  ASSERT_EQ(principals.size(), 9u);
  using Kind = PolicyPrincipal::Kind;
  EXPECT_EQ(principals[0].kind, Kind::kAny);
  EXPECT_EQ(principals[1].kind, Kind::kAccount);
  EXPECT_EQ(principals[1].account, "tenant-a");
  EXPECT_EQ(principals[2].kind, Kind::kAccount);
  EXPECT_EQ(principals[2].account, "tenant-b");
  EXPECT_EQ(principals[3].kind, Kind::kUser);
  EXPECT_EQ(principals[3].account, "tenant-c");
  EXPECT_EQ(principals[3].name, "alice");
  EXPECT_EQ(principals[4].kind, Kind::kUser);
  EXPECT_EQ(principals[4].account, "");
  EXPECT_EQ(principals[4].name, "bob");
  EXPECT_EQ(principals[5].name, "carol");
  EXPECT_EQ(principals[6].kind, Kind::kAccount);
  EXPECT_EQ(principals[6].account, "tenant-e");
  EXPECT_EQ(principals[7].kind, Kind::kFederated);
  EXPECT_EQ(principals[7].name, "cognito-identity.amazonaws.com");
  EXPECT_EQ(principals[8].kind, Kind::kService);
  EXPECT_EQ(principals[8].name, "logging.s3.amazonaws.com");
}

TEST(BucketPolicyParse, EveryConditionOperator) {
  BucketPolicy policy = MustParse(AllowAll("s3:GetObject", R"json("Condition": {
      "StringEquals": {"s3:prefix": "a"},
      "StringNotEquals": {"s3:prefix": ["a", "b"]},
      "StringEqualsIgnoreCase": {"s3:prefix": "a"},
      "StringNotEqualsIgnoreCase": {"s3:prefix": "a"},
      "StringLike": {"s3:prefix": "a*"},
      "StringNotLike": {"s3:prefix": "a?"},
      "NumericEquals": {"s3:max-keys": 10},
      "NumericNotEquals": {"s3:max-keys": "10"},
      "NumericLessThan": {"s3:max-keys": "1.5"},
      "NumericLessThanEquals": {"s3:max-keys": "-3"},
      "NumericGreaterThan": {"s3:max-keys": "1e3"},
      "NumericGreaterThanEquals": {"s3:max-keys": "0"},
      "DateEquals": {"aws:CurrentTime": "2025-01-01"},
      "DateNotEquals": {"aws:CurrentTime": "2025-01-01T00:00:00Z"},
      "DateLessThan": {"aws:CurrentTime": "2025-01-01T00:00:00.5+02:00"},
      "DateLessThanEquals": {"aws:EpochTime": "1700000000"},
      "DateGreaterThan": {"aws:EpochTime": 1700000000},
      "DateGreaterThanEquals": {"aws:CurrentTime": "2025-01-01T10:00Z"},
      "Bool": {"aws:SecureTransport": false},
      "BinaryEquals": {"s3:x-amz-content-sha256": "QmluYXJ5"},
      "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]},
      "NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"},
      "ArnEquals": {"aws:SourceArn": "arn:aws:s3:::photos"},
      "ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::x"},
      "ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"},
      "ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::y*"},
      "Null": {"s3:x-amz-acl": "true"},
      "ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "a"},
      "ForAllValues:StringLike": {"s3:RequestObjectTagKeys": ["a*", "b*"]},
      "StringEqualsIfExists": {"s3:x-amz-acl": "private"},
      "ForAnyValue:NumericLessThanIfExists": {"s3:max-keys": 5},
      "stringequals": {"s3:delimiter": "/"}
    })json"));
  const auto& conditions = policy.statements()[0].conditions;
  ASSERT_EQ(conditions.size(), 32u);
  auto find = [&](ConditionOperator op, ConditionSet set, bool if_exists) {
    for (const PolicyCondition& condition : conditions) {
      if (condition.op == op && condition.set == set && condition.if_exists == if_exists) {
        return &condition;
      }
    }
    ADD_FAILURE() << "no " << ConditionOperatorName(op);
    return &conditions[0];
  };
  EXPECT_EQ(find(ConditionOperator::kNumericEquals, ConditionSet::kNone, false)->values,
            std::vector<std::string>{"10"});  // a JSON number
  EXPECT_EQ(find(ConditionOperator::kBool, ConditionSet::kNone, false)->values,
            std::vector<std::string>{"false"});  // a JSON boolean
  EXPECT_EQ(find(ConditionOperator::kStringNotEquals, ConditionSet::kNone, false)->values,
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(find(ConditionOperator::kStringEquals, ConditionSet::kForAnyValue, false)->key,
            "s3:RequestObjectTagKeys");
  EXPECT_EQ(find(ConditionOperator::kStringLike, ConditionSet::kForAllValues, false)->values,
            (std::vector<std::string>{"a*", "b*"}));
  EXPECT_EQ(find(ConditionOperator::kStringEquals, ConditionSet::kNone, true)->key, "s3:x-amz-acl");
  const PolicyCondition* both =
      find(ConditionOperator::kNumericLessThan, ConditionSet::kForAnyValue, true);
  EXPECT_EQ(both->values, std::vector<std::string>{"5"});
  EXPECT_EQ(ConditionOperatorName(both->op), "NumericLessThan");
  // "stringequals" is StringEquals: operator names are matched in any case.
  size_t string_equals = 0;
  for (const PolicyCondition& condition : conditions) {
    if (condition.op == ConditionOperator::kStringEquals && condition.set == ConditionSet::kNone &&
        !condition.if_exists) {
      ++string_equals;
    }
  }
  EXPECT_EQ(string_equals, 2u);
}

// ---------------------------------------------------------------------------------------
// Parsing: every refusal

TEST(BucketPolicyParse, RefusesMalformedDocuments) {
  ExpectInvalid("", "empty");
  ExpectInvalid("  \n ", "empty");
  ExpectInvalid("{", "not valid JSON");
  ExpectInvalid(R"json({"Version": "2012-10-17",})json", "not valid JSON");
  ExpectInvalid("[]", "must be a JSON object, not a list");
  ExpectInvalid("\"policy\"", "must be a JSON object, not a string");
  ExpectInvalid(Doc("[]") + "x", "not valid JSON");
  ExpectInvalid(R"json({"Version": "2012-10-17", "Statement": [], "Extra": 1})json",
                "unknown top-level element \"Extra\"");
}

TEST(BucketPolicyParse, RefusesBadVersions) {
  ExpectInvalid(R"json({"Statement": []})json", "missing Version");
  ExpectInvalid(R"json({"Version": "2012-10-18", "Statement": []})json",
                "unsupported Version \"2012-10-18\"");
  ExpectInvalid(R"json({"Version": 2012, "Statement": []})json",
                "Version must be a string, not a number");
}

TEST(BucketPolicyParse, RefusesBadStatementLists) {
  ExpectInvalid(R"json({"Version": "2012-10-17"})json", "missing Statement");
  ExpectInvalid(Doc("[]"), "Statement must not be an empty list");
  ExpectInvalid(Doc("\"s\""), "Statement must be an object or a list of objects, not a string");
  ExpectInvalid(Doc("[1]"), "statement 0: a statement must be an object, not a number");
  ExpectInvalid(R"json({"Version": "2012-10-17", "Id": 7, "Statement": []})json",
                "Id must be a string");
}

TEST(BucketPolicyParse, RefusesBadStatements) {
  const std::string rest =
      R"json("Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/*")json";
  ExpectInvalid(Doc("[{" + rest + "}]"), "statement 0: missing Effect");
  ExpectInvalid(Doc(R"json([{"Effect": "allow", )json" + rest + "}]"),
                "Effect must be \"Allow\" or \"Deny\", not \"allow\"");
  ExpectInvalid(Doc(R"json([{"Effect": true, )json" + rest + "}]"),
                "Effect must be \"Allow\" or \"Deny\", not a boolean");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Colour": "red", )json" + rest + "}]"),
                "unknown element \"Colour\"");
  ExpectInvalid(Doc(R"json([{"Sid": 1, "Effect": "Allow", )json" + rest + "}]"),
                "Sid must be a string, not a number");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::photos/*"}])json"),
                "missing Principal (or NotPrincipal)");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": "*",
                 "Resource": "arn:aws:s3:::photos/*"}])json"),
                "missing Action (or NotAction)");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}])json"),
                "missing Resource (or NotResource)");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": "*", "NotPrincipal": "*",
                 "Action": "s3:GetObject", "Resource": "*"}])json"),
                "has both Principal and NotPrincipal");
  ExpectInvalid(Doc(R"json([{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                 "NotAction": "s3:PutObject", "Resource": "*"}])json"),
                "has both Action and NotAction");
  ExpectInvalid(Doc(R"json([{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "*", "NotResource": "*"}])json"),
                "has both Resource and NotResource");
}

TEST(BucketPolicyParse, NamesTheStatementBySid) {
  ExpectInvalid(Doc(R"json([{"Sid": "Reader", "Effect": "Allow", "Principal": "*",
                 "Action": "s3:Frobnicate", "Resource": "*"}])json"),
                "statement 0 (Sid \"Reader\"): Policy has invalid action: \"s3:Frobnicate\"");
}

TEST(BucketPolicyParse, RefusesDuplicateSids) {
  ExpectInvalid(Doc(R"json([
      {"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
      {"Sid": "A", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}
    ])json"),
                "the Sid \"A\" is used by another statement");
  // Empty Sids are not ids.
  MustParse(Doc(R"json([
      {"Sid": "", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
      {"Sid": "", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}
    ])json"));
}

TEST(BucketPolicyParse, RefusesNotPrincipalWithAllow) {
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "NotPrincipal": {"AWS": "tenant-a"},
                 "Action": "s3:GetObject", "Resource": "*"}])json"),
                "NotPrincipal is not supported with \"Effect\": \"Allow\"");
  MustParse(Doc(R"json([{"Effect": "Deny", "NotPrincipal": {"AWS": "tenant-a"},
                 "Action": "s3:GetObject", "Resource": "*"}])json"));
}

TEST(BucketPolicyParse, RefusesBadPrincipals) {
  auto with = [](const std::string& principal) {
    return Doc(R"json([{"Effect": "Allow", "Principal": )json" + principal +
               R"json(, "Action": "s3:GetObject", "Resource": "*"}])json");
  };
  ExpectInvalid(with("\"tenant-a\""), "Principal \"tenant-a\" is not valid");
  ExpectInvalid(with("[\"*\"]"), "Principal must be \"*\" or an object, not a list");
  ExpectInvalid(with("{}"), "Principal must not be an empty object");
  ExpectInvalid(with(R"json({"Group": "x"})json"), "unknown principal type \"Group\"");
  ExpectInvalid(with(R"json({"AWS": "arn:aws:iam::*:root"})json"),
                "Invalid principal in policy: \"arn:aws:iam::*:root\"");
  ExpectInvalid(with(R"json({"AWS": "arn:aws:iam::tenant-a:role/admin"})json"),
                "Invalid principal in policy");
  ExpectInvalid(with(R"json({"AWS": "arn:aws:iam:::root"})json"), "Invalid principal in policy");
  ExpectInvalid(with(R"json({"AWS": "arn:aws:iam::tenant-a:user/"})json"),
                "Invalid principal in policy");
  ExpectInvalid(with(R"json({"AWS": "arn:aws:iam::tenant-a:user/al*"})json"),
                "Invalid principal in policy");
  ExpectInvalid(with(R"json({"AWS": "tenant*"})json"), "Invalid principal in policy");
  ExpectInvalid(with(R"json({"AWS": ""})json"), "Invalid principal in policy");
  ExpectInvalid(with(R"json({"AWS": 123})json"),
                "Principal.AWS must be a string or a list of strings, not a number");
  ExpectInvalid(with(R"json({"AWS": []})json"), "Principal.AWS must not be an empty list");
  ExpectInvalid(with(R"json({"AWS": ["tenant-a", null]})json"), "it holds null");
  ExpectInvalid(with(R"json({"CanonicalUser": "a b"})json"), "CanonicalUser \"a b\"");
  ExpectInvalid(with(R"json({"Service": "*"})json"), "Service \"*\"");
}

TEST(BucketPolicyParse, RefusesBadActions) {
  ExpectInvalid(AllowAll("iam:CreateUser"), "\"iam:CreateUser\" is not an S3 action");
  ExpectInvalid(AllowAll("GetObject"), "\"GetObject\" is not an S3 action");
  ExpectInvalid(AllowAll("s3:"), "Policy has invalid action: \"s3:\"");
  ExpectInvalid(AllowAll("s3:GetObjects"), "\"s3:GetObjects\" is not a known S3 action");
  ExpectInvalid(AllowAll("s3:Frob*"), "the pattern \"s3:Frob*\" matches no S3 action");
  ExpectInvalid(AllowAll("s3:GetObject?"), "matches no S3 action");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": "*", "Action": [],
                 "Resource": "*"}])json"),
                "Action must not be an empty list");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": "*", "Action": 5,
                 "Resource": "*"}])json"),
                "Action must be a string or a list of strings, not a number");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": "*",
                 "Action": ["s3:GetObject", {"a": 1}], "Resource": "*"}])json"),
                "Action must be a list of strings; it holds an object");
  ExpectInvalid(Doc(R"json([{"Effect": "Deny", "Principal": "*", "NotAction": "sqs:*",
                 "Resource": "*"}])json"),
                "\"sqs:*\" is not an S3 action");
}

TEST(BucketPolicyParse, RefusesResourcesOutsideTheBucket) {
  auto with = [](const std::string& resource) {
    return Doc(R"json([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": )json" +
               resource + "}]");
  };
  ExpectInvalid(with("\"arn:aws:s3:::videos/*\""),
                "Policy has invalid resource: \"arn:aws:s3:::videos/*\" is not in bucket "
                "\"photos\"");
  ExpectInvalid(with("\"arn:aws:s3:::photos-2/*\""), "is not in bucket");
  ExpectInvalid(with("\"arn:aws:s3:::Photos/*\""), "is not in bucket");  // case-sensitive
  ExpectInvalid(with("\"photos/*\""), "Policy has invalid resource: \"photos/*\"");
  ExpectInvalid(with("\"arn:aws:iam::tenant-a:root\""), "Policy has invalid resource");
  ExpectInvalid(with("\"arn:aws:s3::us-east-1:photos\""), "Policy has invalid resource");
  ExpectInvalid(with("null"), "Resource must be a string or a list of strings, not null");
  ExpectInvalid(with("[\"arn:aws:s3:::photos/*\", \"arn:aws:s3:::other\"]"),
                "\"arn:aws:s3:::other\" is not in bucket");
}

TEST(BucketPolicyParse, RefusesBadConditions) {
  auto with = [](const std::string& condition) {
    return AllowAll("s3:GetObject", "\"Condition\": " + condition);
  };
  ExpectInvalid(with("[]"), "Condition must be an object, not a list");
  ExpectInvalid(with(R"json({"StringEqualz": {"s3:prefix": "a"}})json"),
                "unknown condition operator \"StringEqualz\"");
  ExpectInvalid(with(R"json({"ForSomeValues:StringEquals": {"s3:prefix": "a"}})json"),
                "unknown condition operator");
  ExpectInvalid(with(R"json({"IfExists": {"s3:prefix": "a"}})json"), "unknown condition operator");
  ExpectInvalid(with(R"json({"StringEqualsIfExistsIfExists": {"s3:prefix": "a"}})json"),
                "unknown condition operator");
  ExpectInvalid(with(R"json({"NullIfExists": {"s3:prefix": "true"}})json"),
                "Null takes neither IfExists nor a set prefix");
  ExpectInvalid(with(R"json({"ForAllValues:Null": {"s3:prefix": "true"}})json"),
                "Null takes neither IfExists nor a set prefix");
  ExpectInvalid(with(R"json({"StringEquals": "s3:prefix"})json"),
                "must be a non-empty object of condition keys to values");
  ExpectInvalid(with(R"json({"StringEquals": {}})json"), "must be a non-empty object");
  ExpectInvalid(with(R"json({"StringEquals": {"prefix": "a"}})json"),
                "\"prefix\" is not a condition key");
  ExpectInvalid(with(R"json({"StringEquals": {":prefix": "a"}})json"), "is not a condition key");
  ExpectInvalid(with(R"json({"StringEquals": {"s3:": "a"}})json"), "is not a condition key");
  ExpectInvalid(with(R"json({"StringEquals": {"s3:prefix": []}})json"), "empty list of values");
  ExpectInvalid(with(R"json({"StringEquals": {"s3:prefix": {"a": "b"}}})json"),
                "a value must be a string, number or boolean, not an object");
  ExpectInvalid(with(R"json({"StringEquals": {"s3:prefix": null}})json"), "not null");
  ExpectInvalid(with(R"json({"StringEquals": {"s3:prefix": [["a"]]}})json"), "not a list");
  ExpectInvalid(with(R"json({"NumericLessThan": {"s3:max-keys": "ten"}})json"),
                "\"ten\" is not a number");
  ExpectInvalid(with(R"json({"NumericLessThan": {"s3:max-keys": "0x10"}})json"), "not a number");
  ExpectInvalid(with(R"json({"NumericLessThan": {"s3:max-keys": " 1"}})json"), "not a number");
  ExpectInvalid(with(R"json({"DateLessThan": {"aws:CurrentTime": "tomorrow"}})json"),
                "\"tomorrow\" is not a date");
  ExpectInvalid(with(R"json({"DateLessThan": {"aws:CurrentTime": "2025-02-30"}})json"),
                "is not a date");
  ExpectInvalid(with(R"json({"Bool": {"aws:SecureTransport": "yes"}})json"),
                "\"yes\" is not true or false");
  ExpectInvalid(with(R"json({"Null": {"s3:x-amz-acl": 1}})json"), "\"1\" is not true or false");
  ExpectInvalid(with(R"json({"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}})json"),
                "\"300.1.1.1/8\" is not an IP address or CIDR block");
  ExpectInvalid(with(R"json({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}})json"),
                "not an IP address");
  ExpectInvalid(with(R"json({"NotIpAddress": {"aws:SourceIp": "2001:db8::/129"}})json"),
                "not an IP address");
}

// ---------------------------------------------------------------------------------------
// Hostile input

TEST(BucketPolicyParse, RefusesOversizedDocuments) {
  std::string big =
      AllowAll("s3:GetObject", "\"Sid\": \"" + std::string(kMaxBucketPolicyBytes, 'x') + "\"");
  ExpectInvalid(big, "policies must be 20480 bytes or smaller");
}

TEST(BucketPolicyParse, RefusesDeepNestingWithoutRecursing) {
  ExpectInvalid(std::string(10000, '[') + std::string(10000, ']'), "nested deeper than 16");
  ExpectInvalid(std::string(20000, '['), "nested deeper than 16");
  std::string objects;
  for (int i = 0; i < 2000; ++i) objects += "{\"a\":";
  ExpectInvalid(objects, "nested deeper than 16");
  // 16 levels of lists inside a condition value is still too deep for a policy, but is
  // refused for its type, not its depth.
  ExpectInvalid(
      AllowAll("s3:GetObject", "\"Condition\": {\"StringEquals\": {\"s3:prefix\": " +
                                   std::string(8, '[') + "\"a\"" + std::string(8, ']') + "}}"),
      "not a list");
}

TEST(BucketPolicyParse, HugeArraysWithinTheLimit) {
  std::string actions;
  for (int i = 0; i < 1000; ++i) actions += std::string(i ? "," : "") + "\"s3:GetObject\"";
  std::string json = Doc(R"json([{"Effect": "Allow", "Principal": "*", "Action": [)json" + actions +
                         R"json(], "Resource": "*"}])json");
  ASSERT_LT(json.size(), kMaxBucketPolicyBytes);
  BucketPolicy policy = MustParse(json);
  EXPECT_EQ(policy.statements()[0].actions.size(), 1000u);
  EXPECT_EQ(policy.Evaluate(GetObject()), Decision::kAllow);

  std::string statements;
  for (int i = 0; i < 400; ++i) statements += std::string(i ? "," : "") + "1";
  ExpectInvalid(Doc("[" + statements + "]"), "statement 0: a statement must be an object");
}

TEST(BucketPolicyParse, RefusesDuplicateKeys) {
  ExpectInvalid(Doc(R"json([{"Effect": "Deny", "Effect": "Allow", "Principal": "*",
                 "Action": "s3:GetObject", "Resource": "*"}])json"),
                "the key \"Effect\" appears twice in one object");
  ExpectInvalid(R"json({"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []})json",
                "appears twice");
}

TEST(BucketPolicyParse, RefusesInvalidUtf8) {
  std::string json = AllowAll("s3:GetObject", "\"Sid\": \"caf\xc3\"");
  ExpectInvalid(json, "not valid UTF-8");
  ExpectInvalid(AllowAll("s3:GetObject", "\"Sid\": \"\xff\xfe\""), "not valid UTF-8");
  ExpectInvalid(AllowAll("s3:GetObject", "\"Sid\": \"\xed\xa0\x80\""), "not valid UTF-8");
  // A lone surrogate written as an escape is invalid JSON text.
  ExpectInvalid(AllowAll("s3:GetObject", "\"Sid\": \"\\ud800\""), "not valid JSON");
  // Escaped NUL and other controls are valid JSON; they just never match a real value.
  BucketPolicy policy = MustParse(AllowAll("s3:GetObject", "\"Sid\": \"a\\u0000b\""));
  EXPECT_EQ(policy.statements()[0].sid, std::string("a\0b", 3));
}

TEST(BucketPolicyParse, NonStringsWhereStringsBelong) {
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": true, "Action": "s3:GetObject",
                 "Resource": "*"}])json"),
                "Principal must be \"*\" or an object, not a boolean");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": {"arn": "x"}}])json"),
                "Resource must be a string or a list of strings, not an object");
  ExpectInvalid(Doc(R"json([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "*", "Condition": "none"}])json"),
                "Condition must be an object, not a string");
  ExpectInvalid(Doc(R"json([{"Effect": null, "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "*"}])json"),
                "not null");
}

// ---------------------------------------------------------------------------------------
// Evaluation: principals, actions, resources

TEST(BucketPolicyEvaluate, PublicReadAllowsAnonymousGets) {
  BucketPolicy policy = MustParse(AllowAll("s3:GetObject"));
  EXPECT_EQ(policy.Evaluate(GetObject()), Decision::kAllow);
  EXPECT_EQ(policy.Evaluate(GetObject({}, "tenant-a")), Decision::kAllow);
  EXPECT_EQ(policy.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/cat.jpg")),
            Decision::kNone);
  // The bucket itself is not under photos/*.
  EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos")), Decision::kNone);
}

TEST(BucketPolicyEvaluate, ExplicitDenyWins) {
  BucketPolicy policy = MustParse(Doc(R"json([
      {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::photos/*"},
      {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
       "Resource": "arn:aws:s3:::photos/*"},
      {"Effect": "Allow", "Principal": "*", "Action": "s3:DeleteObject",
       "Resource": "arn:aws:s3:::photos/*"}
    ])json"));
  EXPECT_EQ(policy.Evaluate(Request("s3:DeleteObject", "arn:aws:s3:::photos/a")), Decision::kDeny);
  EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a")), Decision::kAllow);
  EXPECT_EQ(DecisionName(Decision::kDeny), "Deny");
  EXPECT_EQ(DecisionName(Decision::kAllow), "Allow");
  EXPECT_EQ(DecisionName(Decision::kNone), "None");
}

TEST(BucketPolicyEvaluate, AccountPrincipals) {
  for (const char* principal : {"\"tenant-a\"", "\"arn:aws:iam::tenant-a:root\""}) {
    BucketPolicy policy =
        MustParse(Doc(std::string(R"json([{"Effect": "Allow",
        "Principal": {"AWS": )json") +
                      principal + R"json(}, "Action": "s3:GetObject", "Resource": "*"}])json"));
    EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a", "tenant-a")),
              Decision::kAllow);
    EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a", "tenant-a", "bob")),
              Decision::kAllow);
    EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a", "tenant-b")),
              Decision::kNone);
    EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a")), Decision::kNone);
  }
  BucketPolicy canonical = MustParse(Doc(R"json([{"Effect": "Allow",
      "Principal": {"CanonicalUser": "tenant-a"}, "Action": "s3:GetObject", "Resource": "*"}])json"));
  EXPECT_EQ(canonical.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a", "tenant-a")),
            Decision::kAllow);
  EXPECT_EQ(canonical.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a")), Decision::kNone);
}

TEST(BucketPolicyEvaluate, UserPrincipals) {
  auto decide = [](const char* principal, std::optional<std::string> account, std::string user) {
    BucketPolicy policy =
        MustParse(Doc(std::string(R"json([{"Effect": "Allow",
        "Principal": {"AWS": ")json") +
                      principal + R"json("}, "Action": "s3:GetObject", "Resource": "*"}])json"));
    return policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a", account, user));
  };
  const char* alice = "arn:aws:iam::tenant-a:user/alice";
  EXPECT_EQ(decide(alice, "tenant-a", "alice"), Decision::kAllow);
  EXPECT_EQ(decide(alice, "tenant-a", ""), Decision::kNone);
  EXPECT_EQ(decide(alice, "tenant-a", "bob"), Decision::kNone);
  EXPECT_EQ(decide(alice, "tenant-b", "alice"), Decision::kNone);
  EXPECT_EQ(decide(alice, std::nullopt, "alice"), Decision::kNone);
  // Cairn's users are their tenants: an empty user is the account itself.
  const char* self = "arn:aws:iam::tenant-a:user/tenant-a";
  EXPECT_EQ(decide(self, "tenant-a", ""), Decision::kAllow);
  EXPECT_EQ(decide(self, "tenant-a", "tenant-a"), Decision::kAllow);
  // No account in the ARN: user NAME in an empty account or in account NAME.
  const char* bare = "arn:aws:iam:::user/tenant-a";
  EXPECT_EQ(decide(bare, "tenant-a", ""), Decision::kAllow);
  EXPECT_EQ(decide(bare, "tenant-a", "tenant-a"), Decision::kAllow);
  EXPECT_EQ(decide(bare, "", "tenant-a"), Decision::kAllow);
  EXPECT_EQ(decide(bare, "tenant-b", "tenant-a"), Decision::kNone);
  EXPECT_EQ(decide(bare, "tenant-b", ""), Decision::kNone);
  EXPECT_EQ(decide(bare, std::nullopt, ""), Decision::kNone);
  // Paths: the user is the last segment.
  EXPECT_EQ(decide("arn:aws:iam::tenant-a:user/ops/alice", "tenant-a", "alice"), Decision::kAllow);
}

TEST(BucketPolicyEvaluate, ServicePrincipalsNeverMatch) {
  BucketPolicy policy = MustParse(Doc(R"json([{"Effect": "Allow",
      "Principal": {"Service": "logging.s3.amazonaws.com", "Federated": "x.example.com"},
      "Action": "s3:PutObject", "Resource": "*"}])json"));
  EXPECT_EQ(policy.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/a", "tenant-a")),
            Decision::kNone);
  EXPECT_EQ(policy.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/a")), Decision::kNone);
}

TEST(BucketPolicyEvaluate, NotPrincipalDeniesEveryoneElse) {
  BucketPolicy policy = MustParse(Doc(R"json([
      {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
      {"Effect": "Deny", "NotPrincipal": {"AWS": ["tenant-a", "arn:aws:iam::tenant-b:user/bob"]},
       "Action": "s3:*", "Resource": "*"}
    ])json"));
  auto decide = [&](std::optional<std::string> account, std::string user) {
    return policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a", account, user));
  };
  EXPECT_EQ(decide(std::nullopt, ""), Decision::kDeny);
  EXPECT_EQ(decide("tenant-c", ""), Decision::kDeny);
  EXPECT_EQ(decide("tenant-b", "carol"), Decision::kDeny);
  EXPECT_EQ(decide("tenant-b", "bob"), Decision::kAllow);
  EXPECT_EQ(decide("tenant-a", ""), Decision::kAllow);
}

TEST(BucketPolicyEvaluate, NotActionAndNotResource) {
  BucketPolicy policy = MustParse(Doc(R"json([
      {"Effect": "Allow", "Principal": "*", "NotAction": ["s3:Delete*", "s3:Put*"],
       "Resource": "arn:aws:s3:::photos*"},
      {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
       "NotResource": ["arn:aws:s3:::photos/public/*", "arn:aws:s3:::photos/shared/*"]}
    ])json"));
  EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/public/a")),
            Decision::kAllow);
  EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/shared/b")),
            Decision::kAllow);
  EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/private/c")),
            Decision::kDeny);
  EXPECT_EQ(policy.Evaluate(Request("s3:ListBucket", "arn:aws:s3:::photos")), Decision::kAllow);
  EXPECT_EQ(policy.Evaluate(Request("s3:DeleteObject", "arn:aws:s3:::photos/public/a")),
            Decision::kNone);
  EXPECT_EQ(policy.Evaluate(Request("s3:PutObjectAcl", "arn:aws:s3:::photos/public/a")),
            Decision::kNone);
}

TEST(BucketPolicyEvaluate, ActionsMatchInAnyCase) {
  BucketPolicy policy = MustParse(AllowAll("s3:getobject*"));
  EXPECT_EQ(policy.Evaluate(Request("s3:GetObject", "arn:aws:s3:::photos/a")), Decision::kAllow);
  EXPECT_EQ(policy.Evaluate(Request("S3:GETOBJECTACL", "arn:aws:s3:::photos/a")), Decision::kAllow);
  EXPECT_EQ(policy.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/a")), Decision::kNone);
  BucketPolicy everything = MustParse(AllowAll("*"));
  EXPECT_EQ(everything.Evaluate(Request("s3:AnythingAtAll", "arn:aws:s3:::photos/a")),
            Decision::kAllow);
}

TEST(BucketPolicyEvaluate, ResourceWildcards) {
  auto decide = [](const char* pattern, const char* resource) {
    BucketPolicy policy = MustParse(Doc(std::string(R"json([{"Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": ")json") +
                                        pattern + "\"}]"));
    return policy.Evaluate(Request("s3:GetObject", resource));
  };
  // '*' crosses '/'.
  EXPECT_EQ(decide("arn:aws:s3:::photos/a*z", "arn:aws:s3:::photos/a/b/c/z"), Decision::kAllow);
  EXPECT_EQ(decide("arn:aws:s3:::photos/a*z", "arn:aws:s3:::photos/a/b/c/zz/"), Decision::kNone);
  EXPECT_EQ(decide("arn:aws:s3:::photos*", "arn:aws:s3:::photos"), Decision::kAllow);
  EXPECT_EQ(decide("arn:aws:s3:::photos*", "arn:aws:s3:::photos/x/y"), Decision::kAllow);
  // '?' is exactly one character, a multi-byte one included.
  EXPECT_EQ(decide("arn:aws:s3:::photos/?.jpg", "arn:aws:s3:::photos/a.jpg"), Decision::kAllow);
  EXPECT_EQ(decide("arn:aws:s3:::photos/?.jpg", "arn:aws:s3:::photos/.jpg"), Decision::kNone);
  EXPECT_EQ(decide("arn:aws:s3:::photos/?.jpg", "arn:aws:s3:::photos/ab.jpg"), Decision::kNone);
  EXPECT_EQ(decide("arn:aws:s3:::photos/?.jpg", "arn:aws:s3:::photos/\xc3\xa9.jpg"),
            Decision::kAllow);
  EXPECT_EQ(decide("arn:aws:s3:::photos/?.jpg", "arn:aws:s3:::photos/\xf0\x9f\x90\x88.jpg"),
            Decision::kAllow);
  // Keys are case-sensitive.
  EXPECT_EQ(decide("arn:aws:s3:::photos/Cat*", "arn:aws:s3:::photos/cat.jpg"), Decision::kNone);
  EXPECT_EQ(decide("*", "arn:aws:s3:::photos/anything"), Decision::kAllow);
}

TEST(PolicyWildcardMatch, EdgeCases) {
  EXPECT_TRUE(PolicyWildcardMatch("", "", false));
  EXPECT_FALSE(PolicyWildcardMatch("", "a", false));
  EXPECT_TRUE(PolicyWildcardMatch("*", "", false));
  EXPECT_TRUE(PolicyWildcardMatch("**", "abc", false));
  EXPECT_FALSE(PolicyWildcardMatch("?", "", false));
  EXPECT_TRUE(PolicyWildcardMatch("a*b*c", "abc", false));
  EXPECT_TRUE(PolicyWildcardMatch("a*b*c", "aXbYbZc", false));
  EXPECT_FALSE(PolicyWildcardMatch("a*b*c", "acb", false));
  EXPECT_TRUE(PolicyWildcardMatch("*.jpg", "a.b.jpg", false));
  EXPECT_FALSE(PolicyWildcardMatch("*.jpg", "a.jpg.png", false));
  EXPECT_TRUE(PolicyWildcardMatch("A?C", "abc", true));
  EXPECT_FALSE(PolicyWildcardMatch("A?C", "abc", false));
  EXPECT_TRUE(PolicyWildcardMatch("*?", "\xe2\x82\xac", false));
  // Backtracking stays polynomial.
  std::string text(5000, 'a');
  EXPECT_FALSE(PolicyWildcardMatch("*a*a*a*a*a*a*a*a*b", text, false));
  EXPECT_TRUE(PolicyWildcardMatch("*a*a*a*a*a*a*a*a*", text, false));
}

TEST(KnownS3Actions, ListAndLookup) {
  EXPECT_GT(KnownS3Actions().size(), 80u);
  EXPECT_TRUE(IsKnownS3Action("s3:GetObject"));
  EXPECT_TRUE(IsKnownS3Action("S3:getbucketcors"));
  EXPECT_TRUE(IsKnownS3Action("s3:ListBucketMultipartUploads"));
  EXPECT_FALSE(IsKnownS3Action("GetObject"));
  EXPECT_FALSE(IsKnownS3Action("s3:Get*"));
  EXPECT_FALSE(IsKnownS3Action("sqs:GetObject"));
}

// ---------------------------------------------------------------------------------------
// Evaluation: conditions

TEST(PolicyConditions, StringEqualsValuesAreOredAndKeysAnded) {
  const std::string condition =
      R"json({"StringEquals": {"s3:prefix": ["home/", "shared/"], "s3:delimiter": "/"}})json";
  EXPECT_EQ(WithCondition(condition,
                          ConditionContext().Set("s3:prefix", "home/").Set("s3:delimiter", "/")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(condition,
                          ConditionContext().Set("s3:prefix", "shared/").Set("s3:delimiter", "/")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(condition,
                          ConditionContext().Set("s3:prefix", "Home/").Set("s3:delimiter", "/")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(condition, ConditionContext().Set("s3:prefix", "home/")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(condition, ConditionContext()), Decision::kNone);
}

TEST(PolicyConditions, OperatorsAreAnded) {
  const std::string condition = R"json({"StringLike": {"s3:prefix": "home/*"},
      "NumericLessThanEquals": {"s3:max-keys": "100"}})json";
  EXPECT_EQ(WithCondition(condition,
                          ConditionContext().Set("s3:prefix", "home/x").Set("s3:max-keys", "100")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(condition,
                          ConditionContext().Set("s3:prefix", "home/x").Set("s3:max-keys", "101")),
            Decision::kNone);
}

TEST(PolicyConditions, StringNotEquals) {
  const std::string condition = R"json({"StringNotEquals": {"s3:x-amz-acl": ["public-read",
      "public-read-write"]}})json";
  EXPECT_EQ(WithCondition(condition, ConditionContext().Set("s3:x-amz-acl", "private")),
            Decision::kAllow);
  // Negated operators with several values: none may match (NOR).
  EXPECT_EQ(WithCondition(condition, ConditionContext().Set("s3:x-amz-acl", "public-read")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(condition, ConditionContext().Set("s3:x-amz-acl", "public-read-write")),
            Decision::kNone);
  // An absent key satisfies a negated operator.
  EXPECT_EQ(WithCondition(condition, ConditionContext()), Decision::kAllow);
  // A multi-valued key satisfies it only if no value matches.
  EXPECT_EQ(WithCondition(condition,
                          ConditionContext().Set(
                              "s3:x-amz-acl", std::vector<std::string>{"private", "public-read"})),
            Decision::kNone);
}

TEST(PolicyConditions, IgnoreCaseOperators) {
  EXPECT_EQ(WithCondition(R"json({"StringEqualsIgnoreCase": {"aws:UserAgent": "Curl/8"}})json",
                          ConditionContext().Set("aws:UserAgent", "cURL/8")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(R"json({"StringEqualsIgnoreCase": {"aws:UserAgent": "Curl/8"}})json",
                          ConditionContext().Set("aws:UserAgent", "wget")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(R"json({"StringNotEqualsIgnoreCase": {"aws:UserAgent": "Curl/8"}})json",
                          ConditionContext().Set("aws:UserAgent", "CURL/8")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(R"json({"StringNotEqualsIgnoreCase": {"aws:UserAgent": "Curl/8"}})json",
                          ConditionContext().Set("aws:UserAgent", "wget")),
            Decision::kAllow);
}

TEST(PolicyConditions, StringLikeAndNotLike) {
  const std::string like = R"json({"StringLike": {"aws:Referer": ["https://*.example.com/*",
      "https://example.com/?"]}})json";
  EXPECT_EQ(WithCondition(like, ConditionContext().Set("aws:Referer", "https://www.example.com/p")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(like, ConditionContext().Set("aws:Referer", "https://example.com/a")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(like, ConditionContext().Set("aws:Referer", "https://example.com/ab")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(like, ConditionContext().Set("aws:Referer", "https://evil.com/")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(like, ConditionContext()), Decision::kNone);
  const std::string not_like = R"json({"StringNotLike": {"s3:prefix": "private/*"}})json";
  EXPECT_EQ(WithCondition(not_like, ConditionContext().Set("s3:prefix", "private/x")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(not_like, ConditionContext().Set("s3:prefix", "public/x")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(not_like, ConditionContext()), Decision::kAllow);
}

TEST(PolicyConditions, NumericOperators) {
  struct Case {
    const char* op;
    const char* request;
    bool holds;
  };
  const Case cases[] = {
      {"NumericEquals", "10", true},
      {"NumericEquals", "10.0", true},
      {"NumericEquals", "11", false},
      {"NumericNotEquals", "11", true},
      {"NumericNotEquals", "10", false},
      {"NumericLessThan", "9", true},
      {"NumericLessThan", "10", false},
      {"NumericLessThanEquals", "10", true},
      {"NumericLessThanEquals", "11", false},
      {"NumericGreaterThan", "11", true},
      {"NumericGreaterThan", "10", false},
      {"NumericGreaterThanEquals", "10", true},
      {"NumericGreaterThanEquals", "9", false},
      // A request value that is not a number satisfies neither form.
      {"NumericLessThan", "ten", false},
      {"NumericNotEquals", "ten", false},
  };
  for (const Case& c : cases) {
    std::string condition = std::string("{\"") + c.op + "\": {\"s3:max-keys\": \"10\"}}";
    EXPECT_EQ(WithCondition(condition, ConditionContext().Set("s3:max-keys", c.request)),
              c.holds ? Decision::kAllow : Decision::kNone)
        << c.op << " " << c.request;
  }
  // Absent key: positive operators fail, negated ones hold.
  EXPECT_EQ(WithCondition(R"json({"NumericLessThan": {"s3:max-keys": 10}})json", {}),
            Decision::kNone);
  EXPECT_EQ(WithCondition(R"json({"NumericNotEquals": {"s3:max-keys": 10}})json", {}),
            Decision::kAllow);
}

TEST(PolicyConditions, DateOperators) {
  const std::string before =
      R"json({"DateLessThan": {"aws:CurrentTime": "2025-06-01T00:00:00Z"}})json";
  EXPECT_EQ(
      WithCondition(before, ConditionContext().Set("aws:CurrentTime", "2025-05-31T23:59:59Z")),
      Decision::kAllow);
  EXPECT_EQ(
      WithCondition(before, ConditionContext().Set("aws:CurrentTime", "2025-06-01T00:00:00Z")),
      Decision::kNone);
  // Zones are honoured: 01:30+02:00 is 23:30 the day before in UTC.
  EXPECT_EQ(
      WithCondition(before, ConditionContext().Set("aws:CurrentTime", "2025-06-01T01:30:00+02:00")),
      Decision::kAllow);
  const std::string epoch = R"json({"DateGreaterThanEquals": {"aws:EpochTime": "2025-01-01"}})json";
  EXPECT_EQ(WithCondition(epoch, ConditionContext().Set("aws:EpochTime", "1735689600")),
            Decision::kAllow);  // 2025-01-01T00:00:00Z
  EXPECT_EQ(WithCondition(epoch, ConditionContext().Set("aws:EpochTime", "1735689599")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(R"json({"DateEquals": {"aws:CurrentTime": "2025-01-01"}})json",
                          ConditionContext().Set("aws:CurrentTime", "2025-01-01T00:00:00.000Z")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(R"json({"DateNotEquals": {"aws:CurrentTime": "2025-01-01"}})json",
                          ConditionContext().Set("aws:CurrentTime", "2025-01-01T00:00:01Z")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(R"json({"DateLessThanEquals": {"aws:CurrentTime": "2025-01-01"}})json",
                          ConditionContext().Set("aws:CurrentTime", "2025-01-01")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(R"json({"DateGreaterThan": {"aws:CurrentTime": "2025-01-01"}})json",
                          ConditionContext().Set("aws:CurrentTime", "2024-12-31T23:59:59Z")),
            Decision::kNone);
  EXPECT_EQ(WithCondition(before, ConditionContext().Set("aws:CurrentTime", "not a date")),
            Decision::kNone);
}

TEST(PolicyConditions, BoolOperator) {
  // The classic "deny plain HTTP": a JSON boolean in the policy.
  BucketPolicy policy = MustParse(Doc(R"json([
      {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
      {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
       "Condition": {"Bool": {"aws:SecureTransport": false}}}])json"));
  EXPECT_EQ(policy.Evaluate(GetObject(ConditionContext().Set("aws:SecureTransport", "false"))),
            Decision::kDeny);
  EXPECT_EQ(policy.Evaluate(GetObject(ConditionContext().Set("aws:SecureTransport", "true"))),
            Decision::kAllow);
  EXPECT_EQ(policy.Evaluate(GetObject(ConditionContext().Set("aws:SecureTransport", "FALSE"))),
            Decision::kDeny);
  EXPECT_EQ(policy.Evaluate(GetObject()), Decision::kAllow);  // absent: Bool fails
}

TEST(PolicyConditions, BinaryEquals) {
  EXPECT_EQ(WithCondition(R"json({"BinaryEquals": {"s3:x-amz-content-sha256": "QUJD"}})json",
                          ConditionContext().Set("s3:x-amz-content-sha256", "QUJD")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(R"json({"BinaryEquals": {"s3:x-amz-content-sha256": "QUJD"}})json",
                          ConditionContext().Set("s3:x-amz-content-sha256", "qujd")),
            Decision::kNone);
}

TEST(PolicyConditions, IpAddressV4AndV6) {
  const std::string condition = R"json({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24",
      "2001:db8:1234::/48", "198.51.100.7"]}})json";
  auto from = [&](const char* ip) {
    return WithCondition(condition, ConditionContext().Set("aws:SourceIp", ip));
  };
  EXPECT_EQ(from("192.0.2.1"), Decision::kAllow);
  EXPECT_EQ(from("192.0.2.255"), Decision::kAllow);
  EXPECT_EQ(from("192.0.3.0"), Decision::kNone);
  EXPECT_EQ(from("198.51.100.7"), Decision::kAllow);
  EXPECT_EQ(from("198.51.100.8"), Decision::kNone);
  EXPECT_EQ(from("2001:db8:1234:ffff::1"), Decision::kAllow);
  EXPECT_EQ(from("2001:DB8:1234::"), Decision::kAllow);
  EXPECT_EQ(from("[2001:db8:1234::5]"), Decision::kAllow);
  EXPECT_EQ(from("2001:db8:1235::1"), Decision::kNone);
  EXPECT_EQ(from("::ffff:192.0.2.9"), Decision::kAllow);  // IPv4-mapped
  EXPECT_EQ(from("::192.0.2.9"), Decision::kNone);
  EXPECT_EQ(from("not-an-ip"), Decision::kNone);
  EXPECT_EQ(from(""), Decision::kNone);

  const std::string negated = R"json({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8",
      "fd00::/8"]}})json";
  auto not_from = [&](const char* ip) {
    return WithCondition(negated, ConditionContext().Set("aws:SourceIp", ip));
  };
  EXPECT_EQ(not_from("10.1.2.3"), Decision::kNone);
  EXPECT_EQ(not_from("fd12::1"), Decision::kNone);
  EXPECT_EQ(not_from("11.1.2.3"), Decision::kAllow);
  EXPECT_EQ(not_from("fe80::1"), Decision::kAllow);
  EXPECT_EQ(not_from("garbage"), Decision::kNone);
  EXPECT_EQ(WithCondition(negated, ConditionContext()), Decision::kAllow);
  // /0 matches every address of its family, and only of its family.
  EXPECT_EQ(WithCondition(R"json({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})json",
                          ConditionContext().Set("aws:SourceIp", "203.0.113.9")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(R"json({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})json",
                          ConditionContext().Set("aws:SourceIp", "2001:db8::1")),
            Decision::kNone);
}

TEST(PolicyConditions, ArnOperators) {
  auto decide = [](const char* op, const char* pattern, const char* value) {
    return WithCondition(std::string("{\"") + op + "\": {\"aws:SourceArn\": \"" + pattern + "\"}}",
                         ConditionContext().Set("aws:SourceArn", value));
  };
  EXPECT_EQ(decide("ArnEquals", "arn:aws:s3:::logs", "arn:aws:s3:::logs"), Decision::kAllow);
  EXPECT_EQ(decide("ArnLike", "arn:aws:s3:::logs-*", "arn:aws:s3:::logs-2025"), Decision::kAllow);
  EXPECT_EQ(decide("ArnLike", "arn:aws:s3:::logs-*", "arn:aws:s3:::other"), Decision::kNone);
  // A wildcard stays inside its component...
  EXPECT_EQ(decide("ArnLike", "arn:aws:*:::x", "arn:aws:s3:us-east-1::x"), Decision::kNone);
  EXPECT_EQ(decide("ArnLike", "arn:aws:*:*::x", "arn:aws:s3:us-east-1::x"), Decision::kAllow);
  // ...except in the resource part, which may hold colons.
  EXPECT_EQ(decide("ArnLike", "arn:aws:sns:*:*:topic*", "arn:aws:sns:eu:111:topic:a:b"),
            Decision::kAllow);
  EXPECT_EQ(decide("ArnNotEquals", "arn:aws:s3:::logs", "arn:aws:s3:::other"), Decision::kAllow);
  EXPECT_EQ(decide("ArnNotLike", "arn:aws:s3:::log*", "arn:aws:s3:::logs"), Decision::kNone);
  EXPECT_EQ(decide("ArnEquals", "arn:aws:s3:::logs", "not-an-arn"), Decision::kNone);
}

TEST(PolicyConditions, NullOperator) {
  const std::string absent = R"json({"Null": {"s3:x-amz-server-side-encryption": "true"}})json";
  EXPECT_EQ(WithCondition(absent, ConditionContext()), Decision::kAllow);
  EXPECT_EQ(
      WithCondition(absent, ConditionContext().Set("s3:x-amz-server-side-encryption", "AES256")),
      Decision::kNone);
  const std::string present = R"json({"Null": {"s3:x-amz-server-side-encryption": false}})json";
  EXPECT_EQ(WithCondition(present, ConditionContext()), Decision::kNone);
  EXPECT_EQ(
      WithCondition(present, ConditionContext().Set("s3:x-amz-server-side-encryption", "AES256")),
      Decision::kAllow);
  // An empty value list in the context is an absent key.
  EXPECT_EQ(WithCondition(absent, ConditionContext().Set("s3:x-amz-server-side-encryption",
                                                         std::vector<std::string>{})),
            Decision::kAllow);
}

TEST(PolicyConditions, IfExists) {
  const std::string condition = R"json({"StringEqualsIfExists": {"s3:x-amz-acl": "private"}})json";
  EXPECT_EQ(WithCondition(condition, ConditionContext()), Decision::kAllow);
  EXPECT_EQ(WithCondition(condition, ConditionContext().Set("s3:x-amz-acl", "private")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(condition, ConditionContext().Set("s3:x-amz-acl", "public-read")),
            Decision::kNone);
  const std::string numeric =
      R"json({"NumericLessThanEqualsIfExists": {"s3:max-keys": "100"}})json";
  EXPECT_EQ(WithCondition(numeric, ConditionContext()), Decision::kAllow);
  EXPECT_EQ(WithCondition(numeric, ConditionContext().Set("s3:max-keys", "1000")), Decision::kNone);
  const std::string negated = R"json({"StringNotLikeIfExists": {"s3:prefix": "secret*"}})json";
  EXPECT_EQ(WithCondition(negated, ConditionContext()), Decision::kAllow);
  EXPECT_EQ(WithCondition(negated, ConditionContext().Set("s3:prefix", "secret/a")),
            Decision::kNone);
}

TEST(PolicyConditions, ForAnyValue) {
  const std::string condition =
      R"json({"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["project", "owner"]}})json";
  auto keys = [&](std::vector<std::string> values) {
    return WithCondition(condition, ConditionContext().Set("s3:RequestObjectTagKeys", values));
  };
  EXPECT_EQ(keys({"colour", "owner"}), Decision::kAllow);
  EXPECT_EQ(keys({"colour"}), Decision::kNone);
  EXPECT_EQ(keys({}), Decision::kNone);  // absent: ForAnyValue fails
  const std::string negated =
      R"json({"ForAnyValue:StringNotLike": {"s3:RequestObjectTagKeys": ["p*"]}})json";
  EXPECT_EQ(
      WithCondition(negated, ConditionContext().Set("s3:RequestObjectTagKeys",
                                                    std::vector<std::string>{"project", "colour"})),
      Decision::kAllow);
  EXPECT_EQ(WithCondition(negated,
                          ConditionContext().Set("s3:RequestObjectTagKeys",
                                                 std::vector<std::string>{"project", "priority"})),
            Decision::kNone);
  EXPECT_EQ(WithCondition(negated, ConditionContext()), Decision::kNone);
  // IfExists turns the absent case around.
  EXPECT_EQ(WithCondition(R"json({"ForAnyValue:StringEqualsIfExists":
                              {"s3:RequestObjectTagKeys": "x"}})json",
                          ConditionContext()),
            Decision::kAllow);
}

TEST(PolicyConditions, ForAllValues) {
  const std::string condition = R"json({"ForAllValues:StringEquals":
      {"s3:RequestObjectTagKeys": ["project", "owner", "colour"]}})json";
  auto keys = [&](std::vector<std::string> values) {
    return WithCondition(condition, ConditionContext().Set("s3:RequestObjectTagKeys", values));
  };
  EXPECT_EQ(keys({"project", "owner"}), Decision::kAllow);
  EXPECT_EQ(keys({"project", "secret"}), Decision::kNone);
  EXPECT_EQ(keys({}), Decision::kAllow);  // absent: ForAllValues holds
  const std::string negated =
      R"json({"ForAllValues:StringNotEquals": {"s3:RequestObjectTagKeys": ["secret"]}})json";
  EXPECT_EQ(
      WithCondition(negated, ConditionContext().Set("s3:RequestObjectTagKeys",
                                                    std::vector<std::string>{"project", "owner"})),
      Decision::kAllow);
  EXPECT_EQ(
      WithCondition(negated, ConditionContext().Set("s3:RequestObjectTagKeys",
                                                    std::vector<std::string>{"project", "secret"})),
      Decision::kNone);
}

TEST(PolicyConditions, MultiValuedKeyWithoutSetPrefix) {
  // Positive operators: some request value matches.
  EXPECT_EQ(WithCondition(R"json({"StringEquals": {"s3:RequestObjectTagKeys": "owner"}})json",
                          ConditionContext().Set("s3:RequestObjectTagKeys",
                                                 std::vector<std::string>{"a", "owner"})),
            Decision::kAllow);
}

TEST(PolicyConditions, KeysAreCaseInsensitive) {
  EXPECT_EQ(WithCondition(R"json({"IpAddress": {"AWS:SOURCEIP": "192.0.2.0/24"}})json",
                          ConditionContext().Set("aws:SourceIp", "192.0.2.5")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(R"json({"stringequals": {"S3:Prefix": "a"}})json",
                          ConditionContext().Set("s3:prefix", "a")),
            Decision::kAllow);
  // ...up to the '/', after which tag keys keep their case.
  EXPECT_EQ(WithCondition(R"json({"StringEquals": {"S3:ExistingObjectTag/Project": "x"}})json",
                          ConditionContext().Set("s3:existingobjecttag/Project", "x")),
            Decision::kAllow);
  EXPECT_EQ(WithCondition(R"json({"StringEquals": {"s3:ExistingObjectTag/project": "x"}})json",
                          ConditionContext().Set("s3:ExistingObjectTag/Project", "x")),
            Decision::kNone);
}

TEST(PolicyConditions, NoLookupMeansEveryKeyIsAbsent) {
  BucketPolicy policy = MustParse(AllowAll(
      "s3:GetObject", R"json("Condition": {"StringNotEquals": {"s3:x-amz-acl": "x"}})json"));
  PolicyRequest request = GetObject();
  request.conditions = nullptr;
  EXPECT_EQ(policy.Evaluate(request), Decision::kAllow);
}

TEST(ConditionContext, NormalizesKeys) {
  EXPECT_EQ(ConditionContext::NormalizeKey("AWS:SourceIp"), "aws:sourceip");
  EXPECT_EQ(ConditionContext::NormalizeKey("S3:ExistingObjectTag/Tag/Key"),
            "s3:existingobjecttag/Tag/Key");
  ConditionContext context;
  context.Set("aws:SourceIp", "1.2.3.4");
  EXPECT_EQ(context.Get("AWS:SOURCEIP"), std::vector<std::string>{"1.2.3.4"});
  EXPECT_TRUE(context.Get("aws:Referer").empty());
}

// ---------------------------------------------------------------------------------------
// IsPublic, after the examples of S3's "The meaning of public"

bool IsPublic(const std::string& statements) { return MustParse(Doc(statements)).IsPublic(); }

TEST(BucketPolicyIsPublic, GrantsToEveryone) {
  EXPECT_TRUE(IsPublic(R"json([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
      "Resource": "arn:aws:s3:::photos/*"}])json"));
  EXPECT_TRUE(IsPublic(R"json([{"Effect": "Allow", "Principal": {"AWS": "*"},
      "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::photos"}])json"));
  EXPECT_TRUE(IsPublic(R"json([{"Effect": "Allow", "Principal": {"AWS": ["tenant-a", "*"]},
      "Action": "s3:GetObject", "Resource": "*"}])json"));
}

TEST(BucketPolicyIsPublic, FixedPrincipalsAreNotPublic) {
  EXPECT_FALSE(IsPublic(R"json([{"Effect": "Allow", "Principal": {"AWS": "tenant-a"},
      "Action": "s3:*", "Resource": "*"}])json"));
  EXPECT_FALSE(IsPublic(R"json([{"Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::tenant-a:user/alice", "Service": "s3.amazonaws.com"},
      "Action": "s3:*", "Resource": "*"}])json"));
  EXPECT_FALSE(IsPublic(R"json([{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
      "Resource": "*"}])json"));
}

TEST(BucketPolicyIsPublic, FixedConditionValuesMakeItPrivate) {
  auto with = [](const std::string& condition) {
    return IsPublic(R"json([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "*", "Condition": )json" +
                    condition + "}]");
  };
  EXPECT_FALSE(with(R"json({"StringEquals": {"aws:SourceVpc": "vpc-91237329"}})json"));
  EXPECT_FALSE(with(R"json({"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})json"));
  EXPECT_FALSE(with(R"json({"StringEquals": {"aws:SourceAccount": "111122223333"}})json"));
  EXPECT_FALSE(with(R"json({"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::logs"}})json"));
  EXPECT_FALSE(with(R"json({"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})json"));
  EXPECT_FALSE(with(R"json({"StringEquals": {"aws:PrincipalAccount": ["a", "b"]}})json"));
  EXPECT_FALSE(with(R"json({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})json"));
  EXPECT_FALSE(
      with(R"json({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}})json"));
  // One pinning condition among others is enough.
  EXPECT_FALSE(with(R"json({"StringLike": {"s3:prefix": "*"},
      "StringEquals": {"aws:SourceOwner": "111122223333"}})json"));
}

TEST(BucketPolicyIsPublic, ConditionsThatDoNotPin) {
  auto with = [](const std::string& condition) {
    return IsPublic(R"json([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "*", "Condition": )json" +
                    condition + "}]");
  };
  // Wildcards are not fixed values.
  EXPECT_TRUE(with(R"json({"StringLike": {"aws:SourceVpc": "vpc-*"}})json"));
  EXPECT_TRUE(with(R"json({"StringEquals": {"aws:SourceAccount": "1111*"}})json"));
  EXPECT_TRUE(with(R"json({"StringLike": {"aws:userid": "AROAEXAMPLE:*"}})json"));
  // Nor are policy variables.
  EXPECT_TRUE(
      with(R"json({"StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}})json"));
  // Keys that do not identify the caller.
  EXPECT_TRUE(with(R"json({"StringEquals": {"s3:prefix": "public/"}})json"));
  EXPECT_TRUE(with(R"json({"Bool": {"aws:SecureTransport": "true"}})json"));
  // Negations, IfExists and ForAllValues let requests without the key through.
  EXPECT_TRUE(with(R"json({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}})json"));
  EXPECT_TRUE(with(R"json({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}})json"));
  EXPECT_TRUE(with(R"json({"ForAllValues:StringEquals": {"aws:SourceVpc": "vpc-1"}})json"));
  EXPECT_TRUE(with(R"json({"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}})json"));
  EXPECT_TRUE(with(R"json({"IpAddressIfExists": {"aws:SourceIp": "192.0.2.0/24"}})json"));
  // Ranges too wide to be a restriction.
  EXPECT_TRUE(with(R"json({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})json"));
  EXPECT_TRUE(with(R"json({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "0.0.0.0/1"]}})json"));
  EXPECT_TRUE(with(R"json({"IpAddress": {"aws:SourceIp": "::/0"}})json"));
}

TEST(BucketPolicyIsPublic, AnyPublicStatementMakesThePolicyPublic) {
  EXPECT_TRUE(IsPublic(R"json([
      {"Effect": "Allow", "Principal": {"AWS": "tenant-a"}, "Action": "s3:*", "Resource": "*"},
      {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}])json"));
}

// ---------------------------------------------------------------------------------------
// Ceph s3-tests bucket policy scenarios, as unit cases (the documents those tests put).

TEST(BucketPolicyS3Tests, ListBucketOnBucketAndObjects) {
  // test_bucket_policy, test_get_publicpolicy_acl_bucket_policy_status
  BucketPolicy policy = MustParse(Doc(R"json([{"Effect": "Allow", "Principal": {"AWS": "*"},
      "Action": "s3:ListBucket",
      "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"]}])json"));
  EXPECT_EQ(policy.Evaluate(Request("s3:ListBucket", "arn:aws:s3:::photos", "alt")),
            Decision::kAllow);
  EXPECT_TRUE(policy.IsPublic());
}

TEST(BucketPolicyS3Tests, WildcardBucketsCopyToAnotherBucket) {
  // test_bucket_policy_another_bucket: the same document goes on two buckets.
  const std::string json = Doc(R"json([{"Effect": "Allow", "Principal": {"AWS": "*"},
      "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::*", "arn:aws:s3:::*/*"]}])json");
  EXPECT_TRUE(BucketPolicy::Parse(json, "photos").ok());
  EXPECT_TRUE(BucketPolicy::Parse(json, "videos").ok());
}

TEST(BucketPolicyS3Tests, MultipartNeedsTheObjectResource) {
  // test_bucket_policy_multipart
  BucketPolicy bucket_only = MustParse(Doc(R"json([{"Effect": "Allow", "Principal": {"AWS": "*"},
      "Action": "s3:PutObject", "Resource": "arn:aws:s3:::photos"}])json"));
  EXPECT_EQ(bucket_only.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/mpobj", "alt")),
            Decision::kNone);
  BucketPolicy object = MustParse(Doc(R"json([{"Effect": "Allow", "Principal": {"AWS": "*"},
      "Action": "s3:PutObject", "Resource": "arn:aws:s3:::photos/mpobj"}])json"));
  EXPECT_EQ(object.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/mpobj", "alt")),
            Decision::kAllow);
}

TEST(BucketPolicyS3Tests, RefererIfExists) {
  // test_bucket_policy_set_condition_operator_end_with_IfExists
  BucketPolicy policy = MustParse(R"json({"Version": "2012-10-17", "Statement": [{
      "Sid": "Allow Public Access to All Objects", "Effect": "Allow", "Principal": "*",
      "Action": "s3:GetObject",
      "Condition": {"StringLikeIfExists": {"aws:Referer": "http://www.example.com/*"}},
      "Resource": "arn:aws:s3:::photos/*"}]})json");
  auto from = [&](const char* referer) {
    return policy.Evaluate(GetObject(ConditionContext().Set("aws:Referer", referer)));
  };
  EXPECT_EQ(from("http://www.example.com/"), Decision::kAllow);
  EXPECT_EQ(from("http://www.example.com/index.html"), Decision::kAllow);
  EXPECT_EQ(from("http://example.com"), Decision::kNone);
  EXPECT_EQ(policy.Evaluate(GetObject()), Decision::kAllow);
}

TEST(BucketPolicyS3Tests, TagAndHeaderConditions) {
  // test_bucket_policy_get_obj_existing_tag
  BucketPolicy tag = MustParse(AllowAll(
      "s3:GetObject",
      R"json("Condition": {"StringEquals": {"s3:ExistingObjectTag/security": "public"}})json"));
  EXPECT_EQ(tag.Evaluate(GetObject(
                ConditionContext().Set("s3:ExistingObjectTag/security", "public"), "alt")),
            Decision::kAllow);
  EXPECT_EQ(tag.Evaluate(GetObject(
                ConditionContext().Set("s3:ExistingObjectTag/security", "private"), "alt")),
            Decision::kNone);
  EXPECT_EQ(tag.Evaluate(GetObject({}, "alt")), Decision::kNone);
  // test_bucket_policy_put_obj_copy_source
  BucketPolicy copy = MustParse(AllowAll(
      "s3:PutObject",
      R"json("Condition": {"StringLike": {"s3:x-amz-copy-source": "source/public/*"}})json"));
  auto put = [&](const char* source) {
    return copy.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/new", "alt", "",
                                 ConditionContext().Set("s3:x-amz-copy-source", source)));
  };
  EXPECT_EQ(put("source/public/foo"), Decision::kAllow);
  EXPECT_EQ(put("source/private/foo"), Decision::kNone);
  // test_bucket_policy_put_obj_s3_noenc: deny uploads without SSE.
  BucketPolicy sse = MustParse(Doc(R"json([{"Effect": "Deny", "Principal": {"AWS": "*"},
      "Action": "s3:PutObject", "Resource": "arn:aws:s3:::photos/*",
      "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}])json"));
  EXPECT_EQ(sse.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/testobj", "main")),
            Decision::kDeny);
  EXPECT_EQ(
      sse.Evaluate(Request("s3:PutObject", "arn:aws:s3:::photos/testobj", "main", "",
                           ConditionContext().Set("s3:x-amz-server-side-encryption", "AES256"))),
      Decision::kNone);
}

TEST(BucketPolicyS3Tests, PolicyStatus) {
  // test_get_nonpublicpolicy_acl_bucket_policy_status
  EXPECT_FALSE(MustParse(Doc(R"json([{"Effect": "Allow", "Principal": {"AWS": "*"},
      "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"],
      "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/32"}}}])json"))
                   .IsPublic());
  // test_get_nonpublicpolicy_principal_bucket_policy_status
  EXPECT_FALSE(MustParse(Doc(R"json([{"Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::s3tenant1:root"}, "Action": "s3:ListBucket",
      "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"]}])json"))
                   .IsPublic());
  // test_bucket_policy_allow_notprincipal: refused with 400 MalformedPolicy.
  ExpectInvalid(Doc(R"json([{"Effect": "Allow",
      "NotPrincipal": {"AWS": "arn:aws:iam::s3tenant1:root"}, "Action": "s3:ListBucket",
      "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"]}])json"),
                "NotPrincipal is not supported");
}

}  // namespace
}  // namespace cairn::s3
