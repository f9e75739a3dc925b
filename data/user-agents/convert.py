"""Converts uap-core's regexes.yaml to regexes.json, which mailbeacon embeds (no YAML parser in
the binary). Usage: python3 data/user-agents/convert.py [path/to/regexes.yaml]"""
import json, os, sys, yaml

here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "regexes.yaml")
with open(src, encoding="utf-8") as f:
    data = yaml.safe_load(f)
keep = ("user_agent_parsers", "os_parsers", "device_parsers")
with open(os.path.join(here, "regexes.json"), "w", encoding="utf-8") as f:
    json.dump({k: data[k] for k in keep}, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
print("wrote regexes.json:", {k: len(data[k]) for k in keep})
