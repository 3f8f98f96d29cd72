// kerase3_serve: serve a SavedModel as TF Serving does, from C++ without Python.
//
// Loads the export with tensorflow::LoadSavedModel (tag "serve", the loader tensorflow_model_server
// uses), disables XLA compilation exactly as tensorflow_model_server does unless it is given
// --xla_cpu_compilation_enabled=true, and runs each request of a request file through
// bundle.session->Run by the SignatureDef's tensor names. Prints one JSON object per line:
// first the model (load time, signatures), then one per request (outputs, or the error status).
//
//   kerase3_serve MODEL_DIR REQUEST_FILE [--xla_cpu_compilation_enabled=true] [--repeat N] [--threads N]
//
// Request file (plain text, whitespace separated; '#' starts a comment line):
//   kerase3-request 1
//   request SIGNATURE_NAME
//   input NAME DTYPE RANK DIM_0 ... DIM_{RANK-1} VALUE ...       (DTYPE: float32 float64 int32 int64 bool)
//   end
// (any number of requests). Exit status: 0 when every request ran, 1 when one failed, 2 on a
// usage, request-file or load error.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/compiler/jit/flags.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/public/session.h"

namespace {

struct Input {
  std::string name;
  tensorflow::Tensor tensor;
};

struct Request {
  std::string signature;
  std::vector<Input> inputs;
};

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v, int digits) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
  return buf;
}

bool ParseDtype(const std::string& s, tensorflow::DataType* dt) {
  if (s == "float32") *dt = tensorflow::DT_FLOAT;
  else if (s == "float64") *dt = tensorflow::DT_DOUBLE;
  else if (s == "int32") *dt = tensorflow::DT_INT32;
  else if (s == "int64") *dt = tensorflow::DT_INT64;
  else if (s == "bool") *dt = tensorflow::DT_BOOL;
  else return false;
  return true;
}

std::string DtypeName(tensorflow::DataType dt) {
  switch (dt) {
    case tensorflow::DT_FLOAT: return "float32";
    case tensorflow::DT_DOUBLE: return "float64";
    case tensorflow::DT_INT32: return "int32";
    case tensorflow::DT_INT64: return "int64";
    case tensorflow::DT_BOOL: return "bool";
    default: return tensorflow::DataTypeString(dt);
  }
}

// Reads the request file; on error fills *error (with the line's context) and returns false.
bool ReadRequests(const std::string& path, std::vector<Request>* requests, std::string* error) {
  std::ifstream file(path);
  if (!file) {
    *error = "cannot open the request file " + path;
    return false;
  }
  std::stringstream text;
  std::string line;
  while (std::getline(file, line)) {
    size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') continue;
    text << line << '\n';
  }
  std::string word;
  if (!(text >> word) || word != "kerase3-request") {
    *error = "the request file must start with 'kerase3-request 1'";
    return false;
  }
  int version = 0;
  if (!(text >> version) || version != 1) {
    *error = "unknown request file version (expected 1)";
    return false;
  }
  Request* current = nullptr;
  while (text >> word) {
    if (word == "request") {
      requests->emplace_back();
      current = &requests->back();
      if (!(text >> current->signature)) {
        *error = "'request' without a signature name";
        return false;
      }
    } else if (word == "end") {
      if (current == nullptr) {
        *error = "'end' without 'request'";
        return false;
      }
      current = nullptr;
    } else if (word == "input") {
      if (current == nullptr) {
        *error = "'input' outside a request";
        return false;
      }
      std::string name, dtype_name;
      int rank = -1;
      tensorflow::DataType dt;
      if (!(text >> name >> dtype_name >> rank) || rank < 0 || rank > 8) {
        *error = "malformed 'input' header (expected: input NAME DTYPE RANK DIMS...)";
        return false;
      }
      if (!ParseDtype(dtype_name, &dt)) {
        *error = "input " + name + ": unknown dtype " + dtype_name;
        return false;
      }
      tensorflow::TensorShape shape;
      for (int i = 0; i < rank; ++i) {
        long long d = -1;
        if (!(text >> d) || d < 0) {
          *error = "input " + name + ": bad dimension";
          return false;
        }
        shape.AddDim(d);
      }
      tensorflow::Tensor t(dt, shape);
      const int64_t n = shape.num_elements();
      std::string v;
      for (int64_t i = 0; i < n; ++i) {
        if (!(text >> v)) {
          *error = "input " + name + ": expected " + std::to_string(n) + " values, found " + std::to_string(i);
          return false;
        }
        char* end = nullptr;
        if (dt == tensorflow::DT_FLOAT) t.flat<float>()(i) = std::strtof(v.c_str(), &end);
        else if (dt == tensorflow::DT_DOUBLE) t.flat<double>()(i) = std::strtod(v.c_str(), &end);
        else if (dt == tensorflow::DT_INT32) t.flat<int32_t>()(i) = static_cast<int32_t>(std::strtoll(v.c_str(), &end, 10));
        else if (dt == tensorflow::DT_INT64) t.flat<int64_t>()(i) = std::strtoll(v.c_str(), &end, 10);
        else t.flat<bool>()(i) = std::strtoll(v.c_str(), &end, 10) != 0;
        if (end == nullptr || *end != '\0') {
          *error = "input " + name + ": cannot read value '" + v + "' as " + dtype_name;
          return false;
        }
      }
      current->inputs.push_back({name, t});
    } else {
      *error = "unexpected word '" + word + "' in the request file";
      return false;
    }
  }
  if (current != nullptr) {
    *error = "the last request has no 'end'";
    return false;
  }
  return true;
}

std::string TensorJson(const tensorflow::Tensor& t) {
  std::ostringstream out;
  out << "{\"dtype\": " << JsonString(DtypeName(t.dtype())) << ", \"shape\": [";
  for (int i = 0; i < t.dims(); ++i) out << (i ? ", " : "") << t.dim_size(i);
  out << "], \"data\": [";
  const int64_t n = t.NumElements();
  for (int64_t i = 0; i < n; ++i) {
    if (i) out << ", ";
    switch (t.dtype()) {
      case tensorflow::DT_FLOAT: out << JsonNumber(t.flat<float>()(i), 9); break;
      case tensorflow::DT_DOUBLE: out << JsonNumber(t.flat<double>()(i), 17); break;
      case tensorflow::DT_INT32: out << t.flat<int32_t>()(i); break;
      case tensorflow::DT_INT64: out << t.flat<int64_t>()(i); break;
      case tensorflow::DT_BOOL: out << (t.flat<bool>()(i) ? "true" : "false"); break;
      default: out << "null";
    }
  }
  out << "]}";
  return out.str();
}

double Milliseconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  bool xla = false;
  int repeat = 0;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--xla_cpu_compilation_enabled=true") {
      xla = true;
    } else if (a == "--xla_cpu_compilation_enabled=false") {
      xla = false;
    } else if (a == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "kerase3_serve: unknown option " << a << "\n";
      return 2;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) {
    std::cerr << "usage: kerase3_serve MODEL_DIR REQUEST_FILE [--xla_cpu_compilation_enabled=true] [--repeat N] "
                 "[--threads N]\n";
    return 2;
  }
  std::vector<Request> requests;
  std::string error;
  if (!ReadRequests(positional[1], &requests, &error)) {
    std::cout << "{\"ok\": false, \"error\": " << JsonString("request file: " + error) << "}" << std::endl;
    return 2;
  }
  // tensorflow_model_server's default: no XLA compilation (its flag --xla_cpu_compilation_enabled)
  if (!xla) tensorflow::DisableXlaCompilation();

  tensorflow::SessionOptions session_options;
  if (threads > 0) {
    session_options.config.set_intra_op_parallelism_threads(threads);
    session_options.config.set_inter_op_parallelism_threads(threads);
  }
  tensorflow::RunOptions run_options;
  tensorflow::SavedModelBundle bundle;
  auto t0 = std::chrono::steady_clock::now();
  tensorflow::Status status = tensorflow::LoadSavedModel(session_options, run_options, positional[0], {"serve"}, &bundle);
  auto t1 = std::chrono::steady_clock::now();
  if (!status.ok()) {
    std::cout << "{\"ok\": false, \"error\": " << JsonString("LoadSavedModel: " + status.ToString()) << "}" << std::endl;
    return 2;
  }
  {
    std::ostringstream out;
    out << "{\"ok\": true, \"load_ms\": " << JsonNumber(Milliseconds(t0, t1), 6)
        << ", \"xla\": " << (xla ? "true" : "false") << ", \"signatures\": {";
    bool first = true;
    for (const auto& [name, sig] : bundle.meta_graph_def.signature_def()) {
      out << (first ? "" : ", ") << JsonString(name) << ": {\"method\": " << JsonString(sig.method_name())
          << ", \"inputs\": [";
      first = false;
      bool f2 = true;
      for (const auto& [k, v] : sig.inputs()) {
        out << (f2 ? "" : ", ") << JsonString(k);
        f2 = false;
      }
      out << "], \"outputs\": [";
      f2 = true;
      for (const auto& [k, v] : sig.outputs()) {
        out << (f2 ? "" : ", ") << JsonString(k);
        f2 = false;
      }
      out << "]}";
    }
    out << "}}";
    std::cout << out.str() << std::endl;
  }

  bool all_ok = true;
  for (size_t r = 0; r < requests.size(); ++r) {
    const Request& req = requests[r];
    std::ostringstream out;
    out << "{\"request\": " << r << ", \"signature\": " << JsonString(req.signature);
    const auto& sigs = bundle.meta_graph_def.signature_def();
    auto it = sigs.find(req.signature);
    std::string problem;
    std::vector<std::pair<std::string, tensorflow::Tensor>> feeds;
    std::vector<std::string> fetch_keys, fetch_names;
    if (it == sigs.end()) {
      problem = "no signature named " + req.signature;
    } else {
      std::unordered_set<std::string> given;
      for (const Input& in : req.inputs) {
        auto k = it->second.inputs().find(in.name);
        if (k == it->second.inputs().end()) {
          problem = "signature " + req.signature + " has no input named " + in.name;
          break;
        }
        given.insert(in.name);
        feeds.emplace_back(k->second.name(), in.tensor);
      }
      for (const auto& [k, v] : it->second.inputs()) {
        if (problem.empty() && !given.count(k)) problem = "request for " + req.signature + " lacks input " + k;
      }
      for (const auto& [k, v] : it->second.outputs()) {
        fetch_keys.push_back(k);
        fetch_names.push_back(v.name());
      }
    }
    if (!problem.empty()) {
      all_ok = false;
      out << ", \"ok\": false, \"error\": " << JsonString(problem) << "}";
      std::cout << out.str() << std::endl;
      continue;
    }
    std::vector<tensorflow::Tensor> outputs;
    std::vector<double> times;
    for (int k = 0; k <= repeat; ++k) {
      outputs.clear();
      auto a = std::chrono::steady_clock::now();
      status = bundle.session->Run(feeds, fetch_names, {}, &outputs);
      auto b = std::chrono::steady_clock::now();
      times.push_back(Milliseconds(a, b));
      if (!status.ok()) break;
    }
    if (!status.ok()) {
      all_ok = false;
      out << ", \"ok\": false, \"error\": " << JsonString(status.ToString()) << "}";
      std::cout << out.str() << std::endl;
      continue;
    }
    out << ", \"ok\": true, \"first_ms\": " << JsonNumber(times[0], 6);
    if (times.size() > 1) {
      std::vector<double> steady(times.begin() + 1, times.end());
      std::sort(steady.begin(), steady.end());
      out << ", \"steady_ms\": " << JsonNumber(steady[steady.size() / 2], 6) << ", \"steady_min_ms\": "
          << JsonNumber(steady.front(), 6) << ", \"calls\": " << steady.size();
    }
    out << ", \"outputs\": {";
    for (size_t i = 0; i < fetch_keys.size(); ++i) {
      out << (i ? ", " : "") << JsonString(fetch_keys[i]) << ": " << TensorJson(outputs[i]);
    }
    out << "}}";
    std::cout << out.str() << std::endl;
  }
  return all_ok ? 0 : 1;
}
