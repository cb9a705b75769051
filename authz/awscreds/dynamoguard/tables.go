package dynamoguard

import "github.com/aws/aws-sdk-go-v2/service/dynamodb"

// guardTableOperation reports whether input is the input of an operation on
// tables rather than items, which the [Guard] lets through: these act on a
// table as a whole (or on backups, exports, tags, settings), with the
// service's own privileges, and a tenant's role has none of them. The list
// is closed on purpose: an operation DynamoDB adds later is refused until
// the guard knows what it does, as StartBulkPutItems, which writes items
// from S3, is.
func guardTableOperation(input any) bool {
	switch input.(type) {
	case *dynamodb.CreateTableInput, *dynamodb.DescribeTableInput, *dynamodb.UpdateTableInput, *dynamodb.DeleteTableInput,
		*dynamodb.ListTablesInput, *dynamodb.DescribeLimitsInput, *dynamodb.DescribeEndpointsInput,
		*dynamodb.DescribeTimeToLiveInput, *dynamodb.UpdateTimeToLiveInput,
		*dynamodb.DescribeTableReplicaAutoScalingInput, *dynamodb.UpdateTableReplicaAutoScalingInput,
		*dynamodb.DescribeContributorInsightsInput, *dynamodb.UpdateContributorInsightsInput, *dynamodb.ListContributorInsightsInput,
		*dynamodb.CreateGlobalTableInput, *dynamodb.DescribeGlobalTableInput, *dynamodb.UpdateGlobalTableInput, *dynamodb.ListGlobalTablesInput,
		*dynamodb.DescribeGlobalTableSettingsInput, *dynamodb.UpdateGlobalTableSettingsInput,
		*dynamodb.CreateBackupInput, *dynamodb.DescribeBackupInput, *dynamodb.DeleteBackupInput, *dynamodb.ListBackupsInput,
		*dynamodb.DescribeContinuousBackupsInput, *dynamodb.UpdateContinuousBackupsInput,
		*dynamodb.RestoreTableFromBackupInput, *dynamodb.RestoreTableToPointInTimeInput,
		*dynamodb.ExportTableToPointInTimeInput, *dynamodb.DescribeExportInput, *dynamodb.ListExportsInput,
		*dynamodb.ImportTableInput, *dynamodb.DescribeImportInput, *dynamodb.ListImportsInput,
		*dynamodb.DescribeBulkOperationInput, *dynamodb.ListBulkOperationsInput, *dynamodb.CancelBulkOperationInput,
		*dynamodb.DescribeKinesisStreamingDestinationInput, *dynamodb.EnableKinesisStreamingDestinationInput,
		*dynamodb.DisableKinesisStreamingDestinationInput, *dynamodb.UpdateKinesisStreamingDestinationInput,
		*dynamodb.TagResourceInput, *dynamodb.UntagResourceInput, *dynamodb.ListTagsOfResourceInput,
		*dynamodb.GetResourcePolicyInput, *dynamodb.PutResourcePolicyInput, *dynamodb.DeleteResourcePolicyInput:
		return true
	}
	return false
}
