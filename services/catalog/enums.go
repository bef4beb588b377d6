package catalog

import (
	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/internal/protoenum"
)

// The enums wrap the proto enums in structs with an unexported field, as the
// registry's do: outside this package a value is either the zero value ("not
// set") or one of the variables below, because parsing and proto conversion
// refuse numbers the proto does not define.

// Category is the product's JR/T 0244-2022 category, or a brokered service.
type Category struct{ p catalogv1.ProductCategory }

// DemandKind is a kind of enterprise demand a product serves.
type DemandKind struct{ p catalogv1.DemandKind }

// Sector is a national ETS sector.
type Sector struct{ p catalogv1.Sector }

// State is the product's life-cycle state.
type State struct{ p catalogv1.ProductState }

// Asset is a base carbon asset taken as collateral; zero means none.
type Asset struct{ p catalogv1.CarbonAsset }

// The values. The zero value of each type means "not set".
var (
	CategoryCarbonBond           = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_BOND}
	CategoryCarbonPledge         = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_PLEDGE}
	CategoryCarbonRepo           = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_REPO}
	CategoryCarbonCustody        = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_CUSTODY}
	CategoryCarbonForward        = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_FORWARD}
	CategoryCarbonFuture         = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_FUTURE}
	CategoryCarbonOption         = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_OPTION}
	CategoryCarbonSwap           = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_SWAP}
	CategoryCarbonLending        = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_LENDING}
	CategoryCarbonIndex          = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_INDEX}
	CategoryCarbonInsurance      = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_INSURANCE}
	CategoryCarbonFund           = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_FUND}
	CategoryVerification         = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_VERIFICATION}
	CategoryConsulting           = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CONSULTING}
	CategoryCarbonLinkedLoan     = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_CARBON_LINKED_LOAN}
	CategoryAllowanceTradeAgency = Category{catalogv1.ProductCategory_PRODUCT_CATEGORY_ALLOWANCE_TRADE_AGENCY}

	DemandFinancing       = DemandKind{catalogv1.DemandKind_DEMAND_KIND_FINANCING}
	DemandHedging         = DemandKind{catalogv1.DemandKind_DEMAND_KIND_HEDGING}
	DemandSellAllowance   = DemandKind{catalogv1.DemandKind_DEMAND_KIND_SELL_ALLOWANCE}
	DemandBuyAllowance    = DemandKind{catalogv1.DemandKind_DEMAND_KIND_BUY_ALLOWANCE}
	DemandCCERDevelopment = DemandKind{catalogv1.DemandKind_DEMAND_KIND_CCER_DEVELOPMENT}
	DemandCustody         = DemandKind{catalogv1.DemandKind_DEMAND_KIND_CUSTODY}
	DemandInsurance       = DemandKind{catalogv1.DemandKind_DEMAND_KIND_INSURANCE}
	DemandVerification    = DemandKind{catalogv1.DemandKind_DEMAND_KIND_VERIFICATION}
	DemandConsulting      = DemandKind{catalogv1.DemandKind_DEMAND_KIND_CONSULTING}

	SectorPower         = Sector{catalogv1.Sector_SECTOR_POWER}
	SectorSteel         = Sector{catalogv1.Sector_SECTOR_STEEL}
	SectorCement        = Sector{catalogv1.Sector_SECTOR_CEMENT}
	SectorAluminium     = Sector{catalogv1.Sector_SECTOR_ALUMINIUM}
	SectorPetrochemical = Sector{catalogv1.Sector_SECTOR_PETROCHEMICAL}
	SectorChemical      = Sector{catalogv1.Sector_SECTOR_CHEMICAL}
	SectorPaper         = Sector{catalogv1.Sector_SECTOR_PAPER}
	SectorAviation      = Sector{catalogv1.Sector_SECTOR_AVIATION}
	SectorOther         = Sector{catalogv1.Sector_SECTOR_OTHER}

	StateDraft     = State{catalogv1.ProductState_PRODUCT_STATE_DRAFT}
	StatePublished = State{catalogv1.ProductState_PRODUCT_STATE_PUBLISHED}
	StatePaused    = State{catalogv1.ProductState_PRODUCT_STATE_PAUSED}
	StateRetired   = State{catalogv1.ProductState_PRODUCT_STATE_RETIRED}

	AssetCEA  = Asset{catalogv1.CarbonAsset_CARBON_ASSET_CEA}
	AssetCCER = Asset{catalogv1.CarbonAsset_CARBON_ASSET_CCER}
)

// String is the value's short name ("CARBON_PLEDGE", "PUBLISHED"), the key
// stats and index terms use; "" when not set.
func (c Category) String() string   { return protoenum.Key(c.p) }
func (d DemandKind) String() string { return protoenum.Key(d.p) }
func (s Sector) String() string     { return protoenum.Key(s.p) }
func (s State) String() string      { return protoenum.Key(s.p) }
func (a Asset) String() string      { return protoenum.Key(a.p) }

// IsZero reports whether the value is not set.
func (c Category) IsZero() bool   { return c.p == 0 }
func (d DemandKind) IsZero() bool { return d.p == 0 }
func (s Sector) IsZero() bool     { return s.p == 0 }
func (s State) IsZero() bool      { return s.p == 0 }
func (a Asset) IsZero() bool      { return a.p == 0 }

// ParseCategory reads "CARBON_PLEDGE" or "PRODUCT_CATEGORY_CARBON_PLEDGE".
func ParseCategory(s string) (Category, error) {
	p, err := protoenum.Parse[catalogv1.ProductCategory](s)
	return Category{p}, err
}

// ParseDemandKind reads "FINANCING" or "DEMAND_KIND_FINANCING".
func ParseDemandKind(s string) (DemandKind, error) {
	p, err := protoenum.Parse[catalogv1.DemandKind](s)
	return DemandKind{p}, err
}

// ParseSector reads "POWER" or "SECTOR_POWER".
func ParseSector(s string) (Sector, error) {
	p, err := protoenum.Parse[catalogv1.Sector](s)
	return Sector{p}, err
}

// ParseState reads "PUBLISHED" or "PRODUCT_STATE_PUBLISHED".
func ParseState(s string) (State, error) {
	p, err := protoenum.Parse[catalogv1.ProductState](s)
	return State{p}, err
}

// ParseAsset reads "CEA" or "CARBON_ASSET_CEA"; "" is none.
func ParseAsset(s string) (Asset, error) {
	p, err := protoenum.Parse[catalogv1.CarbonAsset](s)
	return Asset{p}, err
}

// Categories, DemandKinds, Sectors and States list every value in proto order.
func Categories() []Category {
	return protoenum.All(func(p catalogv1.ProductCategory) Category { return Category{p} })
}
func DemandKinds() []DemandKind {
	return protoenum.All(func(p catalogv1.DemandKind) DemandKind { return DemandKind{p} })
}
func Sectors() []Sector { return protoenum.All(func(p catalogv1.Sector) Sector { return Sector{p} }) }
func States() []State   { return protoenum.All(func(p catalogv1.ProductState) State { return State{p} }) }

func (c Category) proto() catalogv1.ProductCategory { return c.p }
func (d DemandKind) proto() catalogv1.DemandKind    { return d.p }
func (s Sector) proto() catalogv1.Sector            { return s.p }
func (s State) proto() catalogv1.ProductState       { return s.p }
func (a Asset) proto() catalogv1.CarbonAsset        { return a.p }

// The proto conversions report false, with the zero value, for a number the
// proto does not define.
func categoryFromProto(p catalogv1.ProductCategory) (Category, bool) {
	return Category{protoenum.Known(p)}, p == protoenum.Known(p)
}
func demandFromProto(p catalogv1.DemandKind) (DemandKind, bool) {
	return DemandKind{protoenum.Known(p)}, p == protoenum.Known(p)
}
func sectorFromProto(p catalogv1.Sector) (Sector, bool) {
	return Sector{protoenum.Known(p)}, p == protoenum.Known(p)
}
func stateFromProto(p catalogv1.ProductState) (State, bool) {
	return State{protoenum.Known(p)}, p == protoenum.Known(p)
}
func assetFromProto(p catalogv1.CarbonAsset) (Asset, bool) {
	return Asset{protoenum.Known(p)}, p == protoenum.Known(p)
}
