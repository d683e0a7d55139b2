// templates.cpp: a template-heavy C++ file that g++ compiles under LD_PRELOAD (a real program).
//
// Stresses the allocator as a compiler uses it: cc1plus allocates millions of tree nodes, hash
// tables and vectors (part through its own GC pages, much through malloc/realloc/free), so a
// compile of this file takes a few seconds and a few hundred MiB. It instantiates
//   - std::map, std::vector, std::tuple and std::variant over many distinct generated types,
//   - std::visit over two variants (the cross product of their alternatives),
//   - deep variadic recursion (type lists, folds, index sequences),
//   - constexpr evaluation (a sieve and a sort run at compile time),
// and its translation is deterministic, so the assembly compared by the preload test is identical
// under any allocator. It is not linked or run; main() only keeps everything referenced.
//
// Compile: g++ -std=c++20 -O1 -S -frandom-seed=templates -o - templates.cpp
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace stress {

template <std::size_t I>
struct Key {
  std::uint64_t value;
  std::array<char, 1 + I % 7> pad{};
  friend bool operator<(const Key& a, const Key& b) { return a.value < b.value; }
};

template <std::size_t I>
struct Payload {
  std::string name = std::to_string(I);
  std::vector<int> data = std::vector<int>(I % 11 + 1, static_cast<int>(I));
  int weight() const { return static_cast<int>(name.size() + data.size() * I); }
};

// ---- constexpr work -------------------------------------------------------------------------
template <std::size_t N>
constexpr std::array<bool, N> sieve() {
  std::array<bool, N> composite{};
  for (std::size_t i = 2; i * i < N; ++i)
    if (!composite[i])
      for (std::size_t j = i * i; j < N; j += i) composite[j] = true;
  return composite;
}

template <std::size_t N>
constexpr std::size_t count_primes() {
  constexpr auto composite = sieve<N>();
  std::size_t count = 0;
  for (std::size_t i = 2; i < N; ++i) count += composite[i] ? 0 : 1;
  return count;
}

template <std::size_t N>
constexpr std::array<std::uint32_t, N> sorted_pseudo_random() {
  std::array<std::uint32_t, N> values{};
  std::uint32_t x = 2463534242u;
  for (auto& v : values) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = x;
  }
  std::sort(values.begin(), values.end());
  return values;
}

static_assert(count_primes<20000>() == 2262);
constexpr auto kSorted = sorted_pseudo_random<1200>();
static_assert(kSorted[0] <= kSorted[1199]);

// ---- variadic recursion ---------------------------------------------------------------------
template <class... Ts>
struct TypeList {};

template <std::size_t N, class Acc = TypeList<>>
struct MakeList;
template <std::size_t N, class... Ts>
struct MakeList<N, TypeList<Ts...>> {
  using type = typename MakeList<N - 1, TypeList<Payload<N>, Ts...>>::type;
};
template <class... Ts>
struct MakeList<0, TypeList<Ts...>> {
  using type = TypeList<Payload<0>, Ts...>;
};

template <class List>
struct SumWeights;
template <class... Ts>
struct SumWeights<TypeList<Ts...>> {
  static int run() { return (Ts{}.weight() + ... + 0); }
};

template <std::size_t Depth>
struct Recurse {
  template <class T>
  static constexpr T apply(T x) {
    return Recurse<Depth - 1>::apply(x * 3 + static_cast<T>(Depth)) ^ static_cast<T>(Depth);
  }
};
template <>
struct Recurse<0> {
  template <class T>
  static constexpr T apply(T x) {
    return x;
  }
};

// ---- containers over many types -------------------------------------------------------------
template <std::size_t I>
int use_map(int seed) {
  std::map<Key<I>, Payload<I>> m;
  for (int i = 0; i < seed; ++i)
    m.emplace(Key<I>{static_cast<std::uint64_t>(i * 7 % 13)}, Payload<I>{});
  int total = 0;
  for (auto& [k, v] : m) total += v.weight() + static_cast<int>(k.value);
  auto it = m.lower_bound(Key<I>{5});
  if (it != m.end()) m.erase(it);
  return total + static_cast<int>(m.size()) +
         static_cast<int>(Recurse<40 + I % 24>::apply(static_cast<unsigned>(seed)));
}

template <std::size_t... Is>
int use_maps(int seed, std::index_sequence<Is...>) {
  return (use_map<Is>(seed) + ...);
}

template <std::size_t... Is>
auto make_tuple_of_payloads(std::index_sequence<Is...>) {
  return std::tuple<Payload<Is>...>{};
}

template <std::size_t Offset, std::size_t... Is>
auto variant_of(std::index_sequence<Is...>) -> std::variant<Payload<Offset + Is>...>;

constexpr std::size_t kTypes = 20;
constexpr std::size_t kVariantAlternatives = 12;
using VariantA = decltype(variant_of<0>(std::make_index_sequence<kVariantAlternatives>{}));
using VariantB =
    decltype(variant_of<kVariantAlternatives>(std::make_index_sequence<kVariantAlternatives>{}));

int visit_pairs(const VariantA& a, const VariantB& b) {
  return std::visit([](const auto& x, const auto& y) { return x.weight() * 3 + y.weight(); }, a, b);
}

template <std::size_t... Is>
int tuple_total(std::index_sequence<Is...>) {
  auto t = make_tuple_of_payloads(std::index_sequence<Is...>{});
  return std::apply([](const auto&... p) { return (p.weight() + ... + 0); }, t);
}

}  // namespace stress

int main(int argc, char**) {
  using namespace stress;
  int total = use_maps(argc, std::make_index_sequence<kTypes>{});
  total += tuple_total(std::make_index_sequence<kTypes>{});
  total += SumWeights<MakeList<kTypes>::type>::run();
  total += visit_pairs(VariantA{std::in_place_index<3>}, VariantB{std::in_place_index<5>});
  total += static_cast<int>(kSorted[static_cast<std::size_t>(argc) % kSorted.size()] % 1000);
  return total == 42 ? 1 : 0;
}
