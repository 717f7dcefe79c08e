#pragma once
/// @file
/// @brief Where a shop page shows what the grabber needs: the stock status
///        and its texts, the offers, the quantity, the buy button and how
///        success shows. The defaults describe the demo shop
///        (examples/shop). Standard library only.

#include <string>
#include <vector>

namespace seckill::browser {

/// @brief Where one field of an offer element is read: the text or an
///        attribute, of the offer element itself or of an element under it.
///
/// A plain value. Cost: none.
struct offer_field {
  std::string child;      ///< a selector under the offer element; empty: the element itself
  std::string attribute;  ///< an attribute's name; empty: the text
  [[nodiscard]] bool empty() const noexcept { return child.empty() && attribute.empty(); }
  friend bool operator==(const offer_field&, const offer_field&) = default;
};

/// @brief How a shop's page is laid out, for browser::page_driver.
///
/// Selectors are CSS selectors; `a >>> b` looks for `b` inside the element
/// `a` found: in its open shadow root, or in its document when `a` is a
/// same-origin iframe. Texts match case-insensitively as substrings (ASCII
/// letters; other scripts, such as 有货, match exactly).
///
/// A plain value. Cost: none.
struct site_profile {
  /// How the offers are shown.
  enum class offer_layout {
    select,  ///< a native <select>: each option an offer (value, label, data-*)
    list,    ///< one element per offer (buttons, cards), fields per offer_field
  };

  std::string status = ".stock-status";                      ///< the stock-status element
  std::vector<std::string> in_stock = {"in stock"};          ///< any of these: in stock
  std::vector<std::string> out_of_stock = {"out of stock"};  ///< any of these: none (checked first)

  offer_layout offers = offer_layout::select;
  std::string offer_selector = "#sku";  ///< the <select>, or what matches every offer element
  offer_field sku;                      ///< list: required
  offer_field name;                     ///< list: empty reads the element's text
  offer_field price;                    ///< the first number in it; empty: unknown
  offer_field stock;                    ///< the first whole number in it; empty: 1 if available
  offer_field category;
  std::string unavailable;    ///< list: an offer element matching this is out of stock
  std::string choose_target;  ///< list: what to click under the offer element; empty: itself

  std::string quantity = "#quantity";  ///< an input; empty: no quantity field (or +/- buttons)
  std::string quantity_plus;           ///< a + button (with quantity_value)
  std::string quantity_minus;          ///< a - button
  std::string quantity_value;          ///< where the +/- count shows (text or value)

  std::string buy = "#buy";
  std::string result = ".order-result";              ///< the element showing the shop's answer
  std::vector<std::string> success = {"confirmed"};  ///< any of these in the result: confirmed
  std::string success_url;  ///< a new page whose URL contains this also confirms the order

  [[nodiscard]] bool quantity_by_buttons() const noexcept { return !quantity_plus.empty(); }
};

}  // namespace seckill::browser
