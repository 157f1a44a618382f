#include "cli/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/common.h"

namespace iotpipe::cli {
namespace {

std::string OptionKey(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

// [<command>.alerts]: the alert policy and delivery as one table. A key names the option without its
// "alert-" prefix (min-points -> --alert-min-points, webhook -> --alert-webhook); keys that start
// with "alertmanager" name their option as is (alertmanager-resend -> --alertmanager-resend).
std::string AlertOptionKey(const std::string& key) {
  std::string k = OptionKey(key);
  return k.rfind("alertmanager", 0) == 0 ? k : "alert-" + k;
}

std::string Where(const toml::node& n) {
  const auto& b = n.source().begin;
  return "line " + std::to_string(b.line);
}

// A scalar or an array of scalars as CLI11 inputs; false if the node is not representable.
bool Inputs(const toml::node& n, std::vector<std::string>* out) {
  if (const auto* s = n.as_string()) {
    out->push_back(s->get());
  } else if (const auto* i = n.as_integer()) {
    out->push_back(std::to_string(i->get()));
  } else if (const auto* f = n.as_floating_point()) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", f->get());
    out->push_back(buf);
  } else if (const auto* b = n.as_boolean()) {
    out->push_back(b->get() ? "true" : "false");
  } else if (n.is_date() || n.is_time() || n.is_date_time()) {
    std::ostringstream os;
    if (const auto* d = n.as_date())
      os << *d;
    else if (const auto* tm = n.as_time())
      os << *tm;
    else if (const auto* dt = n.as_date_time())
      os << *dt;
    std::string v = os.str();
    std::replace(v.begin(), v.end(), ' ', 'T');
    out->push_back(v);
  } else if (const auto* a = n.as_array()) {
    for (const auto& e : *a) {
      if (e.is_array() || e.is_table() || !Inputs(e, out)) return false;
    }
  } else {
    return false;
  }
  return true;
}

std::string Section(const std::vector<std::string>& parents) {
  std::string s;
  for (const auto& p : parents) s += (s.empty() ? "" : ".") + p;
  return s.empty() ? "top level" : "[" + s + "]";
}

void Walk(const toml::table& t, std::vector<std::string>& parents, std::vector<CLI::ConfigItem>* items) {
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (const auto* sub = v.as_table()) {
      if (key == "input" && !parents.empty()) {  // [<command>.input]: keys of the input mapping
        for (const auto& [ik, iv] : *sub) {
          CLI::ConfigItem item;
          item.parents = parents;
          item.name = "input-" + OptionKey(std::string(ik.str()));
          if (iv.is_table() || !Inputs(iv, &item.inputs))
            throw CLI::ConfigError(Section(parents) + ".input " + std::string(ik.str()) + " (" + Where(iv) +
                                   "): unsupported value (use a string, number, boolean or array of them)");
          items->push_back(std::move(item));
        }
        continue;
      }
      if (key == "alerts" && !parents.empty()) {  // [<command>.alerts]: the alert policy (AlertOptionKey)
        for (const auto& [ak, av] : *sub) {
          CLI::ConfigItem item;
          item.parents = parents;
          item.name = AlertOptionKey(std::string(ak.str()));
          if (av.is_table() || !Inputs(av, &item.inputs))
            throw CLI::ConfigError(Section(parents) + ".alerts " + std::string(ak.str()) + " (" + Where(av) +
                                   "): unsupported value (use a string, number, boolean or array of them)");
          items->push_back(std::move(item));
        }
        continue;
      }
      parents.push_back(key);
      Walk(*sub, parents, items);
      parents.pop_back();
      continue;
    }
    CLI::ConfigItem item;
    item.parents = parents;
    item.name = OptionKey(key);
    if (!Inputs(v, &item.inputs))
      throw CLI::ConfigError(Section(parents) + " " + key + " (" + Where(v) +
                             "): unsupported value (use a string, number, boolean or array of them)");
    items->push_back(std::move(item));
  }
}

toml::table ParseToml(const std::string& text, const std::string& path) {
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw CLI::ConfigError(path + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                           ": TOML syntax error: " + std::string(e.description()));
  }
}

size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) prev[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); j++)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Suggest(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;  // only close matches
  for (const auto& k : known) {
    size_t d = Distance(name, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::vector<std::string> OptionNames(CLI::App* app) {
  std::vector<std::string> names;
  for (const CLI::Option* o : app->get_options()) {
    if (o->get_configurable() && !o->get_lnames().empty()) names.push_back(o->get_lnames().front());
  }
  return names;
}

CLI::App* FindSub(CLI::App* app, const std::string& name) {
  for (CLI::App* s : app->get_subcommands([](CLI::App*) { return true; })) {
    if (s->get_name() == name) return s;
  }
  return nullptr;
}

void CheckKey(const std::string& key, const std::string& name, const toml::node& v, CLI::App* app,
              const std::string& section, bool top, std::vector<std::string>* problems);

// [<command>.input]: each key is the option input-<key>; then the mapping as a whole.
void CheckInput(const toml::table& t, CLI::App* app, std::vector<std::string>& parents,
                std::vector<std::string>* problems) {
  std::string section = Section(parents);  // "[process]" -> "[process.input]"
  section.insert(section.size() - 1, ".input");
  InputMapping m;
  bool ok = true;
  for (const auto& [k, v] : t) {
    const std::string key(k.str()), name = "input-" + OptionKey(key);
    const size_t before = problems->size();
    CheckKey(key, name, v, app, section, false, problems);
    if (problems->size() != before) {
      ok = false;
      continue;
    }
    const std::string s = v.is_string() ? v.as_string()->get() : "";
    if (name == "input-format")
      ok &= ParseInputFormat(s, &m.format);
    else if (name == "input-id")
      m.id = s;
    else if (name == "input-time")
      m.time = s;
    else if (name == "input-time-unit")
      m.time_unit = s;
    else if (name == "input-value")
      m.value = s;
    else if (name == "input-label")
      m.label = s;
    else if (name == "input-asset")
      m.asset = s;
    else if (name == "input-unit")
      m.unit = s;
    else if (name == "input-tags")
      m.tags = s;
    else if (name == "input-fields")
      m.fields = s;
    else if (name == "input-pattern")
      m.pattern = s;
    else if (name == "input-separator")
      m.separator = s;
    else if (name == "input-quantities") {
      std::vector<std::string> q;
      if (Inputs(v, &q)) m.quantities = q;
    }
  }
  if (!ok) return;
  auto r = ResolveMapping(m);
  if (!r.ok()) problems->push_back(section + " (" + Where(t) + "): " + r.status().message());
}

void CheckTable(const toml::table& t, CLI::App* app, std::vector<std::string>& parents,
                std::vector<std::string>* problems) {
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (const auto* sub = v.as_table()) {
      if (key == "input" && !parents.empty() && app->get_option_no_throw("--input-format") != nullptr) {
        CheckInput(*sub, app, parents, problems);
        continue;
      }
      if (key == "alerts" && !parents.empty() && app->get_option_no_throw("--alert-min-points") != nullptr) {
        std::string section = Section(parents);  // "[run]" -> "[run.alerts]"
        section.insert(section.size() - 1, ".alerts");
        for (const auto& [ak, av] : *sub)
          CheckKey(std::string(ak.str()), AlertOptionKey(std::string(ak.str())), av, app, section, false, problems);
        continue;
      }
      CLI::App* s = FindSub(app, key);
      parents.push_back(key);
      if (s == nullptr || s->get_name() == "config") {
        std::vector<std::string> names;
        for (CLI::App* c : app->get_subcommands([](CLI::App*) { return true; })) names.push_back(c->get_name());
        problems->push_back(Section(parents) + " (" + Where(v) + "): unknown section: there is no command '" + key +
                            "'" + Suggest(key, names));
      } else {
        CheckTable(*sub, s, parents, problems);
      }
      parents.pop_back();
      continue;
    }
    CheckKey(key, OptionKey(key), v, app, Section(parents), parents.empty(), problems);
  }
}

void CheckKey(const std::string& key, const std::string& name, const toml::node& v, CLI::App* app,
              const std::string& section, bool top, std::vector<std::string>* problems) {
  const std::string at = section + " " + key + " (" + Where(v) + ")";
  CLI::Option* opt = app->get_option_no_throw("--" + name);
  if (opt == nullptr || name == "config" || name == "help") {
    problems->push_back(at + ": unknown key" + Suggest(name, OptionNames(app)) +
                        (top ? "; options go in a [command] table, e.g. [run]" : ""));
    return;
  }
  std::vector<std::string> inputs;
  if (!Inputs(v, &inputs)) {
    problems->push_back(at + ": unsupported value (use a string, number, boolean or array of them)");
    return;
  }
  if (opt->get_expected_min() == 0) {  // a flag
    if (!v.is_boolean()) problems->push_back(at + ": expects true or false");
    return;
  }
  try {
    opt->clear();
    opt->add_result(inputs);
    opt->run_callback();
  } catch (const CLI::Error& e) {
    problems->push_back(at + ": invalid value: " + e.what());
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CLI::FileError::Missing(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TomlValue(const CLI::Option* o) {
  if (o->get_expected_min() == 0) return "false";
  std::string d = o->get_default_str();
  if (!d.empty()) {
    char* end = nullptr;
    std::strtod(d.c_str(), &end);
    if (end != nullptr && *end == '\0' && d.find_first_not_of("0123456789.-+eE") == std::string::npos) return d;
    if (d == "true" || d == "false") return d;
  }
  std::string q = "\"";
  for (char c : d) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return q + "\"";
}

void Example(CLI::App* app, const std::string& section, std::string* out) {
  std::string body;
  for (const CLI::Option* o : app->get_options()) {
    if (!o->get_configurable() || o->get_lnames().empty()) continue;
    const std::string& name = o->get_lnames().front();
    if (name == "help" || name == "config" || name == "version") continue;
    body += "# " + o->get_description() + "\n#" + name + " = " + TomlValue(o) + "\n";
  }
  if (!body.empty() || section.empty()) {
    if (!section.empty()) *out += "\n[" + section + "]\n";
    if (!app->get_description().empty()) *out += "# " + app->get_description() + "\n";
    *out += body;
  }
  for (CLI::App* s : app->get_subcommands([](CLI::App*) { return true; })) {
    if (s->get_name() == "config") continue;
    Example(s, section.empty() ? s->get_name() : section + "." + s->get_name(), out);
  }
}

}  // namespace

std::vector<CLI::ConfigItem> TomlConfig::from_config(std::istream& input) const {
  std::stringstream ss;
  ss << input.rdbuf();
  toml::table t = ParseToml(ss.str(), "config");
  std::vector<CLI::ConfigItem> items;
  std::vector<std::string> parents;
  Walk(t, parents, &items);
  return items;
}

std::vector<std::string> CheckConfigFile(const std::string& path, CLI::App& app) {
  std::vector<std::string> problems;
  std::string text;
  try {
    text = ReadAll(path);
  } catch (const CLI::Error&) {
    return {path + ": cannot read the file"};
  }
  toml::table t;
  try {
    t = ParseToml(text, path);
  } catch (const CLI::Error& e) {
    return {e.what()};
  }
  std::vector<std::string> parents;
  CheckTable(t, &app, parents, &problems);
  for (auto& p : problems) p = path + ": " + p;
  return problems;
}

void AddConfig(CLI::App& app, std::function<void(CLI::App&)> register_all) {
  app.config_formatter(std::make_shared<TomlConfig>());
  app.set_config("--config", "",
                 "TOML file with one [command] table of options (command-line flags win); "
                 "see `iotpipe config example`");
  // `iotpipe run --config F`, not only `iotpipe --config F run` (subcommands copy this setting only
  // at creation, so set it on the existing tree too).
  std::function<void(CLI::App*)> fall = [&](CLI::App* a) {
    a->fallthrough();
    for (CLI::App* s : a->get_subcommands([](CLI::App*) { return true; })) fall(s);
  };
  fall(&app);
  auto* cfg = app.add_subcommand("config", "Check configuration files, or print every key with its default");
  cfg->require_subcommand(1);
  auto* check =
      cfg->add_subcommand("check", "Validate a TOML configuration file: exit 0 if valid, 2 with every problem");
  auto file = std::make_shared<std::string>();
  check->add_option("file", *file, "TOML configuration file")->required();
  check->callback([file, register_all] {
    CLI::App fresh;
    register_all(fresh);
    auto problems = CheckConfigFile(*file, fresh);
    for (const auto& p : problems) std::fprintf(stderr, "%s\n", p.c_str());
    if (!problems.empty()) Exit(2);
    std::printf("%s: valid\n", file->c_str());
  });
  auto* example =
      cfg->add_subcommand("example", "Print a configuration file with every key (commented out) and its default");
  auto cmd = std::make_shared<std::string>();
  example->add_option("command", *cmd, "Only this command's table (e.g. run)");
  example->callback([cmd, register_all] {
    CLI::App fresh;
    fresh.option_defaults()->always_capture_default();
    register_all(fresh);
    std::string out = "# iotpipe configuration: one table per command; uncomment and edit what you need.\n";
    out += "# Check it with `iotpipe config check FILE`; use it with `iotpipe <command> --config FILE`.\n";
    if (cmd->empty()) {
      Example(&fresh, "", &out);
    } else {
      CLI::App* s = FindSub(&fresh, *cmd);
      if (s == nullptr || s->get_name() == "config") Fail("config example: no command '" + *cmd + "'", 2);
      Example(s, *cmd, &out);
    }
    std::fputs(out.c_str(), stdout);
  });
}

void PrecheckConfig(int argc, char** argv, std::function<void(CLI::App&)> register_all) {
  std::string path;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a == "--config" && i + 1 < argc)
      path = argv[i + 1];
    else if (a.rfind("--config=", 0) == 0)
      path = a.substr(9);
  }
  if (path.empty()) return;
  CLI::App fresh;
  register_all(fresh);
  auto problems = CheckConfigFile(path, fresh);
  if (problems.empty()) return;
  for (const auto& p : problems) std::fprintf(stderr, "iotpipe: %s\n", p.c_str());
  Exit(2);
}

}  // namespace iotpipe::cli
