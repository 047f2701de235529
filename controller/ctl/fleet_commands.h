#pragma once

#include <string>
#include <vector>

namespace strait::ctl {

class Ctl;

// The fleet's identity: `agents` (list, delete, label) and `token` (create, list, delete).
// Each returns the command's exit status.

int agents(Ctl& ctl, const std::string& output);
int delete_agent(Ctl& ctl, const std::string& id);
// changes as kubectl label takes them: "key=value" sets a label, "key-" removes one.
int label_agent(Ctl& ctl, const std::string& id, const std::vector<std::string>& changes);

// grants as --labels takes them: "k=v,k2=v2", v * granting any value of k.
int create_token(Ctl& ctl, const std::string& ttl, const std::string& description, const std::string& grants);
int list_tokens(Ctl& ctl, const std::string& output);
int delete_token(Ctl& ctl, const std::string& id, bool revoke_agents);

}  // namespace strait::ctl
