// Prints, as JSON, the statements a listing runs in a metadata engine and the database's
// plan for each (MetaStore::ExplainList), so bench/list_scale records the plans of the
// engine's own SQL rather than of a copy.
//
//   cairn_list_explain META_URL TENANT NAMESPACE PREFIX START_AFTER DELIMITER [LIMIT]
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "meta/engines/open_meta_store.h"
#include "meta/meta_store.h"

int main(int argc, char** argv) {
  if (argc != 7 && argc != 8) {
    std::cerr << "usage: cairn_list_explain META_URL TENANT NAMESPACE PREFIX START_AFTER "
                 "DELIMITER [LIMIT]\n";
    return 2;
  }
  cairn::meta::ListRequest request;
  request.tenant = argv[2];
  request.namespace_name = argv[3];
  request.prefix = argv[4];
  request.start_after = argv[5];
  request.delimiter = argv[6];
  request.limit = argc == 8 ? static_cast<uint32_t>(std::strtoul(argv[7], nullptr, 10)) : 1000;
  cairn::Result<std::unique_ptr<cairn::meta::MetaStore>> store =
      cairn::meta::OpenMetaStore(argv[1]);
  if (!store.ok()) {
    std::cerr << "cairn_list_explain: " << store.status().ToString() << "\n";
    return 1;
  }
  cairn::Result<std::vector<cairn::meta::StatementPlan>> plans = (*store)->ExplainList(request);
  if (!plans.ok()) {
    std::cerr << "cairn_list_explain: " << plans.status().ToString() << "\n";
    return 1;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const cairn::meta::StatementPlan& plan : *plans) {
    out.push_back({{"sql", plan.sql}, {"plan", plan.plan}});
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}
