#pragma once
// std::expected, and a stand-in where the standard library has none.
//
// The project is built with GCC 12 and libstdc++ 12, which has std::expected. The fuzz targets
// (tests/fuzz) are built with Debian's clang 14, the compiler that ships libFuzzer: against the
// same libstdc++ it does not get std::expected (libstdc++ requires concepts at level 202002,
// clang 14 reports 201907), and its own libc++ 14 has none either. For that build only, this
// header supplies the part of std::expected and std::unexpected the code uses (no in_place or
// unexpect constructors, no emplace, no monadic operations), with the same names and semantics, so that the code under fuzzing is the code that ships.
#include <version>
#if __has_include(<expected>)
#include <expected>
#endif

#if !defined(__cpp_lib_expected)
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace std {  // NOLINT(cert-dcl58-cpp): only where the library lacks these names

template <class E>
class unexpected {
 public:
  template <class G = E>
    requires(!is_same_v<remove_cvref_t<G>, unexpected> && !is_same_v<remove_cvref_t<G>, in_place_t> &&
             is_constructible_v<E, G>)
  constexpr explicit unexpected(G&& error) : m_error(std::forward<G>(error)) {}

  constexpr const E& error() const& noexcept { return m_error; }
  constexpr E& error() & noexcept { return m_error; }
  constexpr E&& error() && noexcept { return std::move(m_error); }

 private:
  E m_error;
};
template <class E>
unexpected(E) -> unexpected<E>;

template <class E>
class bad_expected_access : public exception {
 public:
  explicit bad_expected_access(E error) : m_error(std::move(error)) {}
  const char* what() const noexcept override { return "bad access to std::expected without expected value"; }
  const E& error() const& noexcept { return m_error; }

 private:
  E m_error;
};

namespace walvault_expected_detail {
template <class T>
inline constexpr bool is_unexpected = false;
template <class E>
inline constexpr bool is_unexpected<unexpected<E>> = true;
}  // namespace walvault_expected_detail

template <class T, class E>
class expected {
 public:
  using value_type = T;
  using error_type = E;
  using unexpected_type = unexpected<E>;

  constexpr expected()
    requires is_default_constructible_v<T>
      : m_state(in_place_index<0>) {}

  template <class U = T>
    requires(!is_same_v<remove_cvref_t<U>, expected> && !is_same_v<remove_cvref_t<U>, in_place_t> &&
             !walvault_expected_detail::is_unexpected<remove_cvref_t<U>> && is_constructible_v<T, U>)
  constexpr explicit(!is_convertible_v<U, T>) expected(U&& value) : m_state(in_place_index<0>, std::forward<U>(value)) {}

  template <class G>
    requires is_constructible_v<E, const G&>
  constexpr explicit(!is_convertible_v<const G&, E>) expected(const unexpected<G>& failure)
      : m_state(in_place_index<1>, failure.error()) {}

  template <class G>
    requires is_constructible_v<E, G>
  constexpr explicit(!is_convertible_v<G, E>) expected(unexpected<G>&& failure)
      : m_state(in_place_index<1>, std::move(failure).error()) {}

  constexpr bool has_value() const noexcept { return m_state.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }

  constexpr const T* operator->() const noexcept { return &std::get<0>(m_state); }
  constexpr T* operator->() noexcept { return &std::get<0>(m_state); }
  constexpr const T& operator*() const& noexcept { return std::get<0>(m_state); }
  constexpr T& operator*() & noexcept { return std::get<0>(m_state); }
  constexpr T&& operator*() && noexcept { return std::get<0>(std::move(m_state)); }
  constexpr const T&& operator*() const&& noexcept { return std::get<0>(std::move(m_state)); }

  constexpr const T& value() const& {
    check_value();
    return std::get<0>(m_state);
  }
  constexpr T& value() & {
    check_value();
    return std::get<0>(m_state);
  }
  constexpr T&& value() && {
    check_value();
    return std::get<0>(std::move(m_state));
  }

  constexpr const E& error() const& noexcept { return std::get<1>(m_state); }
  constexpr E& error() & noexcept { return std::get<1>(m_state); }
  constexpr E&& error() && noexcept { return std::get<1>(std::move(m_state)); }

  template <class U>
  constexpr T value_or(U&& fallback) const& {
    return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
  constexpr T value_or(U&& fallback) && {
    return has_value() ? std::move(**this) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  constexpr void check_value() const {
    if (!has_value()) throw bad_expected_access<E>(error());
  }

  variant<T, E> m_state;  // index 0: the value, 1: the error (by index, so T and E may be equal)
};

template <class E>
class expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;
  using unexpected_type = unexpected<E>;

  constexpr expected() noexcept {}

  template <class G>
    requires is_constructible_v<E, const G&>
  constexpr explicit(!is_convertible_v<const G&, E>) expected(const unexpected<G>& failure) : m_error(failure.error()) {}

  template <class G>
    requires is_constructible_v<E, G>
  constexpr explicit(!is_convertible_v<G, E>) expected(unexpected<G>&& failure) : m_error(std::move(failure).error()) {}

  constexpr bool has_value() const noexcept { return !m_error.has_value(); }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr void operator*() const noexcept {}
  constexpr void value() const {
    if (!has_value()) throw bad_expected_access<E>(*m_error);
  }

  constexpr const E& error() const& noexcept { return *m_error; }
  constexpr E& error() & noexcept { return *m_error; }
  constexpr E&& error() && noexcept { return std::move(*m_error); }

 private:
  optional<E> m_error;  // empty: success
};

}  // namespace std
#endif
