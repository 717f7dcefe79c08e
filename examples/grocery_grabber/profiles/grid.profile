# The demo shop's button grid (examples/shop, "/grid"), in Chinese: one button
# per SKU, the quantity behind - / + buttons, clicks that must be trusted.
status            = #stock-flag
in_stock          = 有货
out_of_stock      = 售罄
offers            = list .sku-grid .sku
offer.sku         = @data-sku
offer.name        = .name
offer.price       = .price          # "¥18.50": the first number
offer.stock       = .left           # "剩 3 件" or 售罄 (no number: none)
offer.category    = @data-category
offer.unavailable = .sold-out
quantity.plus     = .qty .plus
quantity.minus    = .qty .minus
quantity.value    = .qty .count
buy               = #submit
result            = #msg
success           = 下单成功
